"""The seed corpus and what is known about it: questions with the document and fact that
answer them, and questions it cannot answer. Tests import these; conftest holds fixtures only."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_A = "000_4b5d5bcc7add4bfe"  # Japan–South Korea security cooperation (NPEC study)
SEED_B = "004_235fcfc7bfbef7ab"  # U.S.–Japan defense technology sharing

# Questions about the seeds: (question, doc that answers it, a fact the answer must hold;
# "a|b" when any of several is the answer) — the 20 of eval/data/seeds, in its order.
ALL_SEED_QUESTIONS = [
    ("What share of the world's high-technology research and development do the US, Japan, "
     "South Korea and three other allies bankroll?", SEED_A, "50%"),
    ("Which organization published the study New Frontiers for Security Cooperation with "
     "Seoul and Tokyo?", SEED_A, "Nonproliferation Policy Education Center"),
    ("Which Korean company is the only large 5G firm in a major democracy in the Open RAN "
     "Policy Coalition?", SEED_A, "Samsung"),
    ("Which forum could Washington use to coordinate the provision of satellite services?",
     SEED_A, "Asia Pacific Regional Space Agency Forum"),
    ("Where is the large spent-fuel reprocessing plant in Japan?", SEED_A, "Rokkasho"),
    ("Who did the NPEC tap to supply answers on artificial intelligence cooperation?", SEED_A,
     "Tarun Chhabra"),
    ("Which companies is China subsidizing to export 5G systems to the developing world?",
     SEED_A, "Huawei and ZTE"),
    ("What measures could protect spent nuclear fuel ponds from missile and drone attacks?",
     SEED_A, "sprinkler|casks|concrete|birdcage|point defenses|control rooms"),
    ("Who is Karl Friedhoff affiliated with?", SEED_A, "Chicago Council on Global Affairs"),
    ("What did Japan and South Korea disagree about at the 2+2 meetings in Tokyo and Seoul?",
     SEED_A, "with respect China"),
    ("Which fund aims to leverage US financing with Australia, the UK, New Zealand, Canada and "
     "Japan?", SEED_A, "Multilateral Telecommunications Security Fund"),
    ("Who was the former deputy undersecretary of defense for industrial affairs?", SEED_B,
     "Jeffrey Bialos"),
    ("Which countries has Japan negotiated defense equipment cooperation agreements with?",
     SEED_B, "Australia, France, India and the United Kingdom"),
    ("What did Chuck Hagel introduce at the Reagan National Defense Forum?", SEED_B,
     "Defense Innovation Initiative"),
    ("What is the goal of the Defense Innovation Initiative program?", SEED_B,
     "cutting-edge technologies"),
    ("Which organization is James Schoff a senior associate for?", SEED_B,
     "Carnegie Endowment for International Peace"),
    ("Why is Japan strengthening its military under the new guidelines?", SEED_B,
     "rising Chinese military activity"),
    ("What threats do the new U.S.-Japan defense guidelines range over?", SEED_B,
     "ballistic missiles to cyber and space attacks"),
    ("Why may the U.S. not share technical data needed for interoperability with Japan?",
     SEED_B, "technical data"),
    ("What makes collaboration between the two governments on defense technology difficult?",
     SEED_B, "slightly different priorities"),
]
# The ten that most tests use (retrieval, CLI, API): five of each document.
SEED_QUESTIONS = [ALL_SEED_QUESTIONS[i] for i in (0, 1, 2, 3, 4, 11, 12, 13, 14, 15)]


def holds(fact: str, text: str) -> bool:
    """Whether an answer states the fact (or one of its alternatives)."""
    return any(f in text for f in fact.split("|"))


OFF_TOPIC = [
    "How long should I bake a sourdough loaf and at what temperature?",
    "Who won the football World Cup final in 2018?",
    "What is a good recipe for chocolate chip cookies?",
]
