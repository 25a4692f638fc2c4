// The rag web page: ask (answers with [n] links to the quoted span), search, documents, in
// the collection chosen above them and within the documents its filter box selects.
// Plain JavaScript, no dependencies. Text from the server is only ever put in the page as
// text nodes (append / textContent), never as HTML. Every URL is relative to the page
// ('v1/ask', never a path from the host's root), so the page works under a reverse
// proxy's path prefix.
'use strict';

const KEY = 'rag-api-key';  // sessionStorage: the key lives as long as this tab
const COLLECTION = 'rag-collection';
const $ = (selector) => document.querySelector(selector);
const documentsById = new Map();  // doc_id -> summary, for titles
let shownDoc = null;  // {doc_id, text, ...} of the document in the viewer

// The collection's routes, relative to the page: api('ask') is v1/ask for "default",
// v1/collections/NAME/ask for the others.
function collection() { return sessionStorage.getItem(COLLECTION) || 'default'; }
function api(path) {
  const name = collection();
  return (name === 'default' ? 'v1/' : 'v1/collections/' + encodeURIComponent(name) + '/') + path;
}

// The filter box: terms ("team=legal path=reports/") go as they are (the server reads
// them), a JSON filter as its object; empty: no filter.
function filterOf() {
  const text = $('#filter').value.trim();
  if (!text) return null;
  if (text.startsWith('{')) {
    try { return JSON.parse(text); } catch { /* the server says what is wrong */ }
  }
  return text;
}

// ---- small helpers ----------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

const code = (text) => el('code', {}, text);
const num = (x, digits = 3) => (typeof x === 'number' ? x.toFixed(digits) : String(x));
const docPath = (docId) => api('documents/' + docId.split('/').map(encodeURIComponent).join('/'));

function say(target, kind, ...parts) {  // kind: '' | 'error' | 'ok'
  target.replaceChildren(...parts);
  target.className = kind ? 'message ' + kind : 'message';
  if (target.id === 'status') target.hidden = parts.length === 0;
}

// ---- talking to the API ---------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function authHeaders(headers = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...headers, Authorization: 'Bearer ' + key } : headers;
}

function detailOf(body, fallback) {
  if (body && typeof body.detail === 'string') return body.detail;
  if (body && body.error && body.error.message) return body.error.message;  // OpenAI-shaped
  return fallback;
}

async function call(method, path, body) {
  const init = { method, headers: authHeaders(body ? { 'Content-Type': 'application/json' } : {}) };
  if (body) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'The server cannot be reached (' + err.message + ').');
  }
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch { /* not JSON */ }
    const error = new ApiError(response.status, detailOf(parsed, response.statusText));
    if (response.status === 401) askForKey(error.message);
    throw error;
  }
  return response;
}

const getJSON = async (path) => (await call('GET', path)).json();

// An error, explained in words a reader can act on.
function explain(err) {
  const status = err.status;
  if (status === 401) return ['This server needs an API key: enter it in the form above.'];
  if (status === 503 && /rag ingest/.test(err.message)) return noIndex();
  if (status === 503) return ['The service is not ready yet: ' + err.message];
  if (status === 429) return ['Too many requests for now: ' + err.message];
  if (status === 0) return [err.message];
  return [err.message + ' (HTTP ' + status + ')'];
}

function noIndex() {
  return ['No documents are indexed yet: upload a file under Documents, or run ',
    code('rag ingest PATH'), ' on the server.'];
}

// Server-sent events over fetch (EventSource cannot POST): yields {event, data}.
async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) yield { event, data: JSON.parse(data.join('\n')) };
    }
  }
}

// ---- API key ----------------------------------------------------------------------

function askForKey(message) {
  const form = $('#key-form');
  const hadKey = sessionStorage.getItem(KEY);
  form.querySelector('p').textContent = hadKey
    ? 'The server refused this API key (' + message + '). Enter the right one.'
    : 'This server requires an API key. It is kept in this browser tab only (session storage).';
  if (form.hidden) {
    form.hidden = false;
    $('#key-input').focus();
  }
}

$('#key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $('#key-input').value.trim());
  $('#key-input').value = '';
  $('#key-form').hidden = true;
  start();
});

// ---- views ------------------------------------------------------------------------

function show(view) {
  closeDocument();
  for (const tab of document.querySelectorAll('.tab')) {
    const here = tab.dataset.view === view;
    if (here) tab.setAttribute('aria-current', 'page'); else tab.removeAttribute('aria-current');
    $('#view-' + tab.dataset.view).hidden = !here;
  }
  if (view === 'documents') loadDocuments();
}

for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => show(tab.dataset.view));
}

// ---- the document viewer ------------------------------------------------------------

// Render the text once: text before, <mark> with exactly text[start:end], text after.
// ``what`` names the marked span in the viewer's line ("the quote", "the passage").
async function openDocument(docId, start, end, what) {
  const panel = $('#doc');
  const box = $('#doc-text');
  try {
    if (!shownDoc || shownDoc.doc_id !== docId) shownDoc = await getJSON(docPath(docId));
  } catch (err) {
    panel.hidden = false;
    $('#doc-title').textContent = docId;
    say($('#doc-meta'), 'error', ...explain(err));
    box.replaceChildren();
    return;
  }
  const text = shownDoc.text;
  $('#doc-title').textContent = shownDoc.title || docId;
  const span = start == null ? '' : ' · ' + (what || 'the quote') + ' at characters ' + start + '–' + end;
  say($('#doc-meta'), '', 'From ', code(shownDoc.source), span);
  panel.hidden = false;
  if (start == null) {
    box.replaceChildren(text);
    box.scrollTop = 0;
    $('#doc-title').focus({ preventScroll: true });
    panel.scrollIntoView({ block: 'start' });
    return;
  }
  const a = Math.max(0, Math.min(start, text.length));
  const b = Math.max(a, Math.min(end, text.length));
  const mark = el('mark', {}, text.slice(a, b));
  box.replaceChildren(text.slice(0, a), mark, text.slice(b));
  $('#doc-title').focus({ preventScroll: true });
  mark.scrollIntoView({ block: 'center' });
}

// The viewer belongs to what opened it: a new answer, an abstention or another tab closes it.
function closeDocument() {
  $('#doc').hidden = true;
}

$('#doc-close').addEventListener('click', closeDocument);

// ---- ask ----------------------------------------------------------------------------

function citeButton(c) {
  return el('button', {
    type: 'button', class: 'cite', title: 'Open the quote in “' + c.title + '”',
    onclick: () => { highlightSource(c.n); openDocument(c.doc_id, c.char_start, c.char_end); },
  }, '[' + c.n + ']');
}

// The answer's text with each [n] that has a citation as a button.
function withMarkers(text, citations) {
  const byN = new Map(citations.map((c) => [c.n, c]));
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const c = byN.get(Number(m[1]));
    if (!c) continue;
    parts.push(text.slice(last, m.index), citeButton(c));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function highlightSource(n) {
  for (const li of document.querySelectorAll('#sources li')) {
    li.classList.toggle('active', li.dataset.n === String(n));
  }
}

// A quote's text with the answer phrase (offsets into the same document) marked, if inside it.
function withPhrase(quote, start, span) {
  if (!span || span.char_start < start || span.char_end > start + quote.length) return [quote];
  const a = span.char_start - start;
  const b = span.char_end - start;
  return [quote.slice(0, a), el('mark', { class: 'phrase' }, quote.slice(a, b)), quote.slice(b)];
}

function sourceItem(c, span) {
  return el('li', { 'data-n': c.n, value: c.n },
    el('strong', {}, c.title),
    el('blockquote', {}, ...withPhrase(c.quote, c.char_start, c.n === 1 ? span : null)),
    el('div', { class: 'meta' }, c.doc_id + where(c.locator) + ', characters ' + c.char_start + '–' + c.char_end + ' ',
      el('button', { type: 'button', onclick: () => openDocument(c.doc_id, c.char_start, c.char_end) },
        'Show in document')));
}

// ", p. 3 (OCR)": where a quote or hit is in the original file (the server's label).
function where(locator) {
  return locator && locator.label ? ', ' + locator.label : '';
}

function renderSources(citations, empty = 'No citations.', span = null) {
  const list = $('#sources');
  if (!citations.length) {
    list.replaceChildren(el('li', { class: 'empty' }, empty));
    return;
  }
  list.replaceChildren(...citations.map((c) => sourceItem(c, span)));
}

// A passage an abstention found closest: opens its document at the passage, marked.
function closestItem(p) {
  const doc = documentsById.get(p.doc_id);
  return el('li', {},
    el('button', {
      type: 'button', class: 'link',
      onclick: () => openDocument(p.doc_id, p.char_start, p.char_end, 'the passage'),
    }, doc ? doc.title : p.doc_id),
    el('span', { class: 'meta' }, ' ' + p.chunk_id + ', score ' + num(p.score)));
}

function rejectedList(generation) {
  const rejected = generation.rejected || [];
  if (!rejected.length) return null;
  const list = el('ul', { id: 'rejected', class: 'rejected', hidden: true },
    ...rejected.map((r) => el('li', {},
      el('q', {}, r.sentence), ' ',
      el('span', { class: 'meta' },
        'cites ' + (r.cites.length ? r.cites.map((n) => '[' + n + ']').join(' ') : 'nothing') +
        ': ' + r.reason + (r.missing && r.missing.length ? ' (' + r.missing.join(', ') + ')' : '') +
        (r.probability != null ? ', support ' + num(r.probability) : '')))));
  const label = (open) => (open ? 'Hide' : 'Show') + ' the ' + rejected.length +
    ' generated sentence' + (rejected.length === 1 ? '' : 's') + ' left out as unverified';
  const toggle = el('button', {
    type: 'button', 'aria-expanded': 'false', 'aria-controls': 'rejected',
    onclick: () => {
      list.hidden = !list.hidden;
      toggle.setAttribute('aria-expanded', String(!list.hidden));
      toggle.textContent = label(!list.hidden);
    },
  }, label(false));
  return el('div', {}, toggle, list);
}

function renderAnswer(answer) {
  const prov = answer.provenance;
  const box = $('#answer');
  const parts = [];
  if (answer.abstained) {
    parts.push(el('div', { class: 'abstained' },
      el('h3', {}, 'The documents don\'t say'),
      el('p', {}, answer.answer),
      prov.closest.length ? el('p', {}, 'The closest passages, for reference:') : null,
      prov.closest.length ? el('ol', { class: 'closest' }, ...prov.closest.map(closestItem)) : null));
  } else {
    const span = answer.answer_span;
    if (span) {
      parts.push(el('p', { class: 'phrase-line' }, 'Answer: ',
        el('strong', { class: 'phrase' }, span.text), ' ', citeButton(answer.citations[0])));
    }
    const first = answer.citations[0];
    const text = answer.answer;
    const lead = span && first && text.startsWith(first.quote)
      ? withPhrase(first.quote, first.char_start, span) : null;
    parts.push(el('p', { class: 'answer-text' },
      ...(lead ? [...lead, ...withMarkers(text.slice(first.quote.length), answer.citations)]
        : withMarkers(text, answer.citations))));
  }
  const gen = prov.generation;
  const facts = [prov.mode + ' answer', prov.retriever && 'retriever ' + prov.retriever,
    prov.timings_ms && Math.round(prov.timings_ms.total) + ' ms'].filter(Boolean);
  parts.push(el('p', { class: 'meta' }, facts.join(', ')));
  if (gen && gen.fallback) parts.push(el('p', { class: 'meta' }, 'Fallback: ' + gen.fallback));
  if (gen && gen.failure) parts.push(el('p', { class: 'meta' }, 'LLM failure: ' + gen.failure));
  if (gen) parts.push(rejectedList(gen));
  box.replaceChildren(...parts.filter(Boolean));
  renderSources(answer.citations, answer.abstained ? 'No citations: nothing answers this.' : undefined,
    answer.answer_span);
}

async function ask(question) {
  const box = $('#answer');
  const button = $('#ask-button');
  const body = { question, stream: true };
  const filter = filterOf();
  if (filter) body.filter = filter;
  if (!$('#mode').hidden) body.mode = document.querySelector('input[name=mode]:checked').value;
  button.disabled = true;
  closeDocument();
  $('#welcome').hidden = true;
  box.setAttribute('aria-busy', 'true');
  box.replaceChildren(el('p', { class: 'meta' }, 'Reading the documents…'));
  renderSources([], 'Citations appear here.');
  const streamed = el('p', { class: 'answer-text' });
  const seen = [];
  try {
    const response = await call('POST', api('ask'), body);
    for await (const { event, data } of serverEvents(response)) {
      if (event === 'sentence') {
        if (!seen.length) box.replaceChildren(streamed);
        streamed.append(...withMarkers(data.text, data.citations), ' ');
        for (const c of data.citations) if (!seen.some((s) => s.n === c.n)) seen.push(c);
        renderSources(seen);
      } else if (event === 'answer') {
        renderAnswer(data);
      } else if (event === 'error') {
        throw new ApiError(data.status, data.detail);
      }
    }
  } catch (err) {
    box.replaceChildren(el('p', { class: 'message error', role: 'alert' }, ...explain(err)));
  } finally {
    button.disabled = false;
    box.removeAttribute('aria-busy');
  }
}

$('#ask-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const question = $('#question').value.trim();
  if (question) ask(question);
});

$('#question').addEventListener('keydown', (event) => {  // Enter asks, Shift+Enter: new line
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    $('#ask-form').requestSubmit();
  }
});

// ---- the first screen ------------------------------------------------------------------

const EXAMPLES = 3;  // example questions on the first screen

// Questions about the indexed documents, made from their titles: a title that is the
// document's own (not its opening words cut short, which end in "…") of a readable length.
function exampleQuestions(documents) {
  return documents
    .map((d) => d.title)
    .filter((t) => t && !t.endsWith('…') && t.length >= 12 && t.length <= 100)
    .slice(0, EXAMPLES)
    .map((t) => 'What does “' + t + '” say?');
}

function renderWelcome(documents) {
  const n = documents.length;
  $('#doc-count').textContent = n
    ? n.toLocaleString() + ' document' + (n === 1 ? ' is' : 's are') + ' indexed.'
    : '';
  const questions = exampleQuestions(documents);
  $('#examples').hidden = !questions.length;
  $('#examples ul').replaceChildren(...questions.map((q) => el('li', {},
    el('button', {
      type: 'button', class: 'link example',
      onclick: () => { $('#question').value = q; $('#ask-form').requestSubmit(); },
    }, q))));
}

// ---- search -------------------------------------------------------------------------

function hitItem(h) {
  const stages = Object.entries(h.stage_scores).map(([name, s]) => name + ' ' + num(s)).join(' · ');
  return el('li', { value: h.rank },
    el('div', { class: 'hit-head' }, el('strong', {}, h.title), ' ',
      el('span', { class: 'meta' }, 'score ' + num(h.score) + (stages ? ' (' + stages + ')' : ''))),
    el('blockquote', {}, h.text),
    el('div', { class: 'meta' }, h.chunk_id + where(h.locator) + ' ',
      el('button', { type: 'button', onclick: () => openDocument(h.doc_id, h.char_start, h.char_end) },
        'Show in document')));
}

$('#search-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = { query: $('#query').value.trim(), k: Number($('#k').value) || 5 };
  if ($('#retriever').value) body.retriever = $('#retriever').value;
  const filter = filterOf();
  if (filter) body.filter = filter;
  const message = $('#search-message');
  say(message, '', 'Searching…');
  closeDocument();
  $('#hits').replaceChildren();
  try {
    const found = await (await call('POST', api('search'), body)).json();
    say(message, '', found.hits.length ? '' : 'No passages matched.');
    $('#hits').replaceChildren(...found.hits.map(hitItem));
  } catch (err) {
    say(message, 'error', ...explain(err));
  }
});

// ---- documents ----------------------------------------------------------------------

async function loadDocuments() {
  const rows = $('#documents');
  let listed;
  try {
    listed = (await getJSON(api('documents'))).documents;
  } catch (err) {
    rows.replaceChildren(el('tr', {}, el('td', { colspan: 5 }, ...explain(err))));
    return;
  }
  documentsById.clear();
  for (const d of listed) documentsById.set(d.doc_id, d);
  renderWelcome(listed);
  if (!listed.length) {
    rows.replaceChildren(el('tr', {}, el('td', { colspan: 5 }, ...noIndex())));
    return;
  }
  rows.replaceChildren(...listed.map((d) => el('tr', { 'data-doc-id': d.doc_id },
    el('td', {}, el('button', { type: 'button', class: 'link', onclick: () => openDocument(d.doc_id) },
      d.title)),
    el('td', {}, code(d.doc_id)),
    el('td', { class: 'number' }, d.chars.toLocaleString()),
    el('td', { class: 'number' }, String(d.chunks)),
    el('td', {}, el('button', {
      type: 'button', class: 'danger', 'aria-label': 'Delete ' + d.title,
      onclick: () => removeDocument(d),
    }, 'Delete')))));
}

async function removeDocument(d) {
  if (!confirm('Delete “' + d.title + '” (' + d.doc_id + ') from the index?')) return;
  const message = $('#upload-message');
  try {
    await call('DELETE', docPath(d.doc_id));
    say(message, 'ok', 'Deleted “' + d.title + '”.');
    if (shownDoc && shownDoc.doc_id === d.doc_id) { shownDoc = null; closeDocument(); }
  } catch (err) {
    say(message, 'error', ...explain(err));
  }
  loadDocuments();
}

// XMLHttpRequest rather than fetch: it reports upload progress. Then "indexing…" until the
// server answers (it embeds and writes a snapshot before replying). A file whose doc_id is
// indexed already is a 409: the page asks before sending it again with replace=true.
function upload(file, replace = false) {
  const message = $('#upload-message');
  const progress = $('#upload-progress');
  const xhr = new XMLHttpRequest();
  xhr.open('POST', api('documents') + (replace ? '?replace=true' : ''));
  for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
  progress.hidden = false;
  progress.value = 0;
  say(message, '', 'Uploading ' + file.name + '…');
  xhr.upload.addEventListener('progress', (e) => {
    if (e.lengthComputable) progress.value = e.loaded / e.total;
  });
  xhr.upload.addEventListener('load', () => {
    progress.removeAttribute('value');  // indeterminate while the server indexes
    say(message, '', 'Indexing ' + file.name + '…');
  });
  xhr.addEventListener('load', () => {
    progress.hidden = true;
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 201) {
      say(message, 'ok', (body.status === 'replaced' ? 'Replaced ' : 'Added ') + file.name +
        ' as ', code(body.doc_id), ' (' + body.chunks + ' chunk' + (body.chunks === 1 ? '' : 's') +
        '). Ask about it under Ask.');
      shownDoc = null;
      checkReady();
    } else if (xhr.status === 409 && !replace) {
      const detail = detailOf(body, 'a document of that name is indexed already');
      if (confirm('Not added: ' + detail + '.\n\nReplace the indexed document with ' +
        file.name + '?')) {
        upload(file, true);
        return;
      }
      say(message, '', 'Not added: ' + file.name + ' is indexed already, left as it was.');
    } else {
      const err = new ApiError(xhr.status, detailOf(body, xhr.statusText || 'upload failed'));
      if (xhr.status === 401) askForKey(err.message);
      say(message, 'error', 'Not added: ', ...explain(err));
    }
    loadDocuments();
  });
  xhr.addEventListener('error', () => {
    progress.hidden = true;
    say(message, 'error', 'The upload failed: the server cannot be reached.');
  });
  xhr.send((() => { const form = new FormData(); form.append('file', file); return form; })());
}

// The formats the server reads, as the server wrote them into the picker's accept list.
$('#formats').textContent = '(' + $('#file').accept.split(',').join(' ') + ')';

$('#file').addEventListener('change', (event) => {
  const file = event.target.files[0];
  if (file) upload(file);
  event.target.value = '';  // choosing the same file again uploads it again
});

const drop = $('#drop');
drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer.files[0];
  if (file) upload(file);
});

// ---- start ----------------------------------------------------------------------------

async function checkReady() {
  const status = $('#status');
  let body = {};
  let ok = false;
  try {
    const response = await fetch('readyz');
    ok = response.ok;
    body = await response.json();
  } catch {
    say(status, 'error', 'The server cannot be reached.');
    return;
  }
  if (ok) say(status, '');
  else if (/rag ingest/.test(body.status)) say(status, '', ...noIndex());
  else if (body.status === 'loading') {
    say(status, '', 'The service is starting: it is loading the model and the index…');
    setTimeout(checkReady, 1000);
  } else say(status, 'error', 'The service could not start: ' + body.status);
}

async function loadModels() {
  try {
    const models = (await getJSON('v1/models')).data.map((m) => m.id);
    const name = collection();
    const generative = models.includes(name === 'default' ? 'rag-generative' : 'rag-generative@' + name);
    $('#mode').hidden = !generative;
    if (generative) document.querySelector('input[name=mode][value=generative]').checked = true;
  } catch { /* 401 shows the key form; otherwise the page stays extractive */ }
}

// `rag serve --watch`: one line on how the folders' sync into the chosen collection is going,
// refreshed while watching (one timer, whichever collection asked last).
let syncTimer = null;
async function loadSync() {
  clearTimeout(syncTimer);
  const line = $('#sync-status');
  let sync;
  try {
    sync = await getJSON(api('sync'));
  } catch {
    line.hidden = true;
    return;
  }
  line.hidden = !sync.watching.length;
  if (line.hidden) return;
  const parts = ['Watching ' + sync.watching.join(', ')];
  const run = sync.last_run;
  if (sync.running) parts.push('syncing…');
  if (run) {
    parts.push('last sync ' + new Date(run.started).toLocaleTimeString() + (run.error
      ? ' failed: ' + run.error
      : ': ' + run.added + ' added, ' + run.replaced + ' replaced, ' + run.deleted + ' deleted'));
  }
  if (sync.pending_count) parts.push(sync.pending_count + ' file(s) pending');
  if (sync.failed.length) {
    parts.push(sync.failed.length + ' not indexed (' +
      sync.failed.slice(0, 3).map((f) => f.path + ': ' + f.reason).join('; ') + ')');
  }
  line.textContent = parts.join(' · ');
  clearTimeout(syncTimer);
  syncTimer = setTimeout(loadSync, 5000);
}

// ---- collections ------------------------------------------------------------------------

// The collections this key may read; the chosen one is kept in this tab.
async function loadCollections() {
  const select = $('#collection');
  let listed;
  try {
    listed = (await getJSON('v1/collections')).collections;
  } catch { return; }  // 401 shows the key form
  if (!listed.length) return;
  if (!listed.some((c) => c.name === collection())) sessionStorage.setItem(COLLECTION, listed[0].name);
  select.replaceChildren(...listed.map((c) => el('option', { value: c.name }, c.name)));
  select.value = collection();
  const chosen = listed.find((c) => c.name === collection());
  $('#collection-count').textContent = chosen.documents + ' document' + (chosen.documents === 1 ? '' : 's');
}

$('#collection').addEventListener('change', (event) => {
  sessionStorage.setItem(COLLECTION, event.target.value);
  shownDoc = null;
  closeDocument();
  $('#welcome').hidden = false;
  $('#answer').replaceChildren();
  renderSources([], 'Citations appear here.');
  $('#hits').replaceChildren();
  say($('#search-message'), '');
  start();
});

$('#scope').addEventListener('submit', (event) => event.preventDefault());

async function start() {
  checkReady();
  await loadCollections();
  loadModels();
  loadDocuments();
  loadSync();
}

start();
