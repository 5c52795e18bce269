// The virtual terminal's page: the control API over fetch, live events over /events. Plain JavaScript.
//
// A payment waiting for a decision ("--outcome ask") shows on the screen; the buttons send the decision
// (POST /pending/ID); the journal row that follows says what the POS got, and the screen says it in turn.
// With --proxy the real terminal decides: the screen says where the POS's connections go, and each row of the
// list shows how the terminal answered (its TCP segments, its close, its own answer when the POS got another).

const TOKEN_KEY = "caisse-ap-ip.token";
const RESULT_SECONDS = 15; // how long the screen shows a result before going back to idle
const JOURNAL_ROWS = 200; // rows kept on the page, newest first
const CHANGED = "An outcome changed the terminal's answer on its way: a marked record is not in the other one.";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  terminals: [],
  terminal: null, // the name of the terminal shown
  shown: 0, // how many times another terminal was chosen: an answer about one shown before is dropped
  pending: [], // every terminal's, oldest first
  chip: null, // a chip card inserted, waiting for the green key: {id, outcome, scheme}
  awaiting: null, // a decision sent, its journal row not yet seen
  result: null, // {verdict, amount, at}
  lastId: 0, // the newest journal row shown
  newest: null, // the newest payment's journal row
  ticket: null, // the terminal's ticket of its last payment (GET /ticket)
  journalLoaded: false,
  journalRead: Promise.resolve(), // one read of the journal at a time, so that each row is taken once
  form: [], // the settings of /ui/page.json
  keys: [], // the server prompt's keys, taken by the page too
  buttons: {}, // data-button name -> {outcome, title, chip: the scheme of a chip card, which the green key pays}
  screen: null, // what the screen says of an answer, by its AE and AF (webui.SCREEN)
  skew: 0, // this browser's clock minus the server's, in seconds
  source: null,
  merchant: "",
  proxy: null, // the real terminal's address, host:port, when every POS connection is relayed to it (--proxy)
};

const $ = (id) => document.getElementById(id);

// -- building elements from data: text only, never HTML

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (value === true) node.setAttribute(name, "");
    else if (value !== false && value != null) node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

// -- the control API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function forTerminal(path) {
  if (state.terminal == null) return path;
  return `${path}${path.includes("?") ? "&" : "?"}terminal=${encodeURIComponent(state.terminal)}`;
}

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const init = { method, headers };
  if (method !== "GET") {
    headers["content-type"] = "application/json"; // the API refuses a browser's state change without it
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    await askToken(state.token ? "That token was refused." : "");
    return api(method, path, body);
  }
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new ApiError(response.status, data.error || `HTTP ${response.status}`);
  return data;
}

async function aboutShown(method, path, body) {
  // the API's answer about the terminal shown; null when another was chosen while it came (ids, settings, the
  // queue and the ticket are that one's: listed, they would stand for the new one's, or hide its rows)
  const shown = state.shown;
  const data = await api(method, forTerminal(path), body);
  return shown === state.shown ? data : null;
}

// -- the token, asked once per tab

let tokenAsked = null;

function askToken(why) {
  if (tokenAsked) return tokenAsked;
  setLink("locked", "token needed");
  const dialog = $("token-dialog");
  $("token-error").textContent = why;
  $("token-input").value = "";
  tokenAsked = new Promise((resolve) => {
    $("token-form").addEventListener(
      "submit",
      () => {
        state.token = $("token-input").value;
        sessionStorage.setItem(TOKEN_KEY, state.token);
        tokenAsked = null;
        resolve();
      },
      { once: true },
    );
  });
  dialog.addEventListener("cancel", (event) => event.preventDefault(), { once: true }); // nothing works without it
  dialog.showModal();
  $("token-input").focus();
  return tokenAsked;
}

// -- live events

function setLink(kind, text) {
  $("link").dataset.state = kind;
  $("link").textContent = text;
}

function failed(error) {
  setLink("waiting", `error: ${error.message}`); // the next event or reconnection reads again
  console.error(error);
}

function listen() {
  if (state.source) state.source.close();
  const url = state.token ? `/events?token=${encodeURIComponent(state.token)}` : "/events";
  const source = new EventSource(url);
  state.source = source;
  const on = (kind, handler) => source.addEventListener(kind, (event) => handler(JSON.parse(event.data)));
  on("hello", (data) => {
    state.skew = Date.now() / 1000 - data.now;
    setLink("live", "live");
    refresh().catch(failed); // what happened while the stream was not open
  });
  on("pending", (data) => {
    const mine = (entry) => entry.terminal === state.terminal;
    const gone = state.pending.filter((old) => mine(old) && !data.pending.some((entry) => entry.id === old.id));
    if (gone.length) state.awaiting = gone[0]; // decided or withdrawn: its journal row follows
    state.pending = data.pending;
    if (state.chip && !state.pending.some((entry) => entry.id === state.chip.id)) state.chip = null;
    showTerminals();
    render();
  });
  on("decided", (data) => {
    if (data.terminal !== state.terminal) return;
    if (!state.awaiting || state.awaiting.id !== data.id) state.awaiting = data;
    note(`Decided by ${data.by}: ${data.outcome}.`);
    render();
  });
  on("transaction", (data) => {
    if (data.terminal !== state.terminal) return;
    newTransactions();
    loadQueue().catch(failed); // a transaction may have taken the queue's first outcome
  });
  on("settings", (data) => data.terminal === state.terminal && loadSettings().catch(failed));
  on("queue", (data) => data.terminal === state.terminal && loadQueue().catch(failed));
  source.onerror = () => {
    setLink("waiting", "reconnecting…");
    if (source.readyState === EventSource.CLOSED) setTimeout(() => start().catch(failed), 2000); // refused: ask the API
  };
}

// -- what the screen shows

function currentPending() {
  return state.pending.find((entry) => entry.terminal === state.terminal) || null;
}

function frenchAmount(text) {
  return text ? text.replace(".", ",") : ""; // as the terminal's tickets print it: 12,00 EUR
}

function records(list) {
  return Object.fromEntries((list || []).map((record) => [record.tag, record]));
}

function verdict(row) {
  // what the screen and the list say of an answer, in the words of /ui/page.json's "screen"
  if (!row.answer) return { tone: "other", title: "SANS REPONSE", detail: row.outcome, summary: row.outcome };
  const answer = records(row.answer_records);
  const status = state.screen.statuses[answer.AE && answer.AE.value];
  if (status) {
    const card = status.card && answer.CC ? answer.CC.meaning : "";
    return { tone: status.tone, title: status.title, detail: card, summary: `${status.summary} ${card}`.trim() };
  }
  const complement = answer.AF ? answer.AF.value.slice(0, 2) : ""; // what follows the code: CB2A sub-fields
  const { tone, title, detail } = { ...state.screen.failure, ...state.screen.complements[complement] };
  return { tone, title, detail, summary: answer.AF ? `${answer.AF.meaning} (AF=${complement})` : "no reason" };
}

function screenOf(now) {
  const current = currentPending();
  if (current) {
    const amount = frenchAmount(current.amount);
    if (state.chip && state.chip.id === current.id) {
      return { tone: "pin", title: state.chip.scheme, amount, message: "SAISISSEZ VOTRE CODE", detail: "* * * *" };
    }
    const message = current.check ? "INSEREZ LE CHEQUE" : "INSEREZ OU PRESENTEZ VOTRE CARTE";
    return { tone: "pay", title: (current.action || "").toUpperCase(), amount, message, detail: waitingNote() };
  }
  if (state.awaiting) {
    return { tone: "waiting", title: "", amount: frenchAmount(state.awaiting.amount), message: "VEUILLEZ PATIENTER" };
  }
  if (state.result && now - state.result.at < RESULT_SECONDS) {
    const { verdict: judged, amount, proxied, said } = state.result;
    const detail = said ? `TERMINAL : ${verdict(said).title}` : judged.detail; // an outcome changed its answer
    return { tone: judged.tone, title: proxied ? `PROXY → ${proxied}` : "", amount, message: judged.title, detail };
  }
  if (state.proxy) {
    return { tone: "proxy", title: `PROXY → ${state.proxy}`, amount: "", message: "RELAIS VERS LE TERMINAL REEL" };
  }
  return { tone: "idle", title: state.merchant, amount: "", message: "EN ATTENTE DE LA CAISSE", detail: "" };
}

function waitingNote() {
  const others = state.pending.filter((item) => item.terminal === state.terminal).length - 1;
  return others > 0 ? `+${others} EN ATTENTE` : "";
}

function setText(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text; // unchanged text is not announced again
}

function render() {
  const now = Date.now() / 1000;
  const shown = screenOf(now);
  $("screen").dataset.tone = shown.tone;
  setText("screen-title", shown.title || "");
  setText("screen-amount", shown.amount || "");
  setText("screen-message", shown.message || "");
  setText("screen-detail", shown.detail || "");
  setText("screen-name", `TERMINAL ${state.terminal ?? ""}`);
  setText("screen-clock", new Date().toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" }));
  renderKeys(currentPending(), now);
}

function renderKeys(current, now) {
  const check = Boolean(current && current.check);
  for (const button of document.querySelectorAll("[data-card]")) {
    button.disabled = !current || check !== button.hasAttribute("data-check");
  }
  for (const button of document.querySelectorAll("[data-decision]")) button.disabled = !current;
  $("key-cancel").disabled = !current;
  $("key-validate").disabled = !current;
  $("key-validate").toggleAttribute("data-armed", Boolean(state.chip));
  $("key-correct").disabled = !state.chip && !state.result && !state.awaiting;
  const left = current ? Math.max(0, Math.ceil(current.deadline - (now - state.skew))) : null;
  setText("screen-countdown", current ? `No decision: ${state.screen.timeout} in ${left} s.` : "");
  const chip = "Validate (green) pays with the card in the reader; Correction (yellow) takes it back.";
  if (current && state.chip) note(chip);
  else if (current) note(`POS ${current.pos ?? "?"} at ${current.peer} is waiting for the customer.`);
  else if (state.proxy) note(`Every POS connection is relayed to the real terminal at ${state.proxy}: it decides.`);
  else if (!state.awaiting && !state.result) note("Waiting for a POS to pay.");
}

function note(text) {
  setText("screen-note", text);
}

// -- the buttons

async function decide(outcome) {
  const current = currentPending();
  if (!current) return;
  state.chip = null;
  if (document.activeElement && document.activeElement.closest(".device")) $("screen").focus(); // its button goes off
  try {
    await api("POST", `/pending/${current.id}`, { outcome, by: "web" }); // the stream says "decided", then the row
  } catch (error) {
    note(error.status === 409 || error.status === 404 ? "Already decided elsewhere." : `Refused: ${error.message}`);
  }
  render();
}

function press(name) {
  const current = currentPending();
  const button = state.buttons[name];
  if (!current || !button) return;
  if (name === "validate" && state.chip) {
    decide(state.chip.outcome); // the card in the reader
  } else if (button.chip) {
    state.chip = { id: current.id, outcome: button.outcome, scheme: button.chip }; // the PIN, then the green key
    render();
    $("key-validate").focus();
  } else {
    decide(button.outcome);
  }
}

function shortcut(event) {
  const taken = event.target.closest("input, select, button, summary, dialog"); // typing, or a control's own key
  if (event.ctrlKey || event.metaKey || event.altKey || taken) return;
  const key = state.keys.find((item) => item.key === event.key);
  if (key && currentPending()) {
    event.preventDefault();
    decide(key.outcome);
  }
}

function wireKeys() {
  document.addEventListener("keydown", shortcut);
  for (const button of document.querySelectorAll("[data-button]")) {
    button.addEventListener("click", () => press(button.dataset.button));
  }
  $("key-correct").addEventListener("click", () => {
    if (state.chip) state.chip = null;
    else state.result = state.awaiting = null; // back to idle: the screen forgets, the POS is not told
    render();
  });
}

// -- the journal

function newTransactions() {
  state.journalRead = state.journalRead.then(readJournal).catch(failed);
  return state.journalRead;
}

async function readJournal() {
  const first = !state.journalLoaded; // the history: listed, not announced on the screen
  state.journalLoaded = true;
  const path = first ? "/journal?last=50" : `/journal?after=${state.lastId}`;
  const read = await aboutShown("GET", path);
  if (!read) return; // the terminal chosen since reads its own
  const { transactions } = read;
  for (const row of transactions) {
    if (row.id <= state.lastId) continue;
    state.lastId = row.id;
    $("journal").prepend(journalRow(row));
    if (records(row.request_records).CB) state.newest = row;
    if (!first) noticed(row);
  }
  while ($("journal").children.length > JOURNAL_ROWS) $("journal").lastElementChild.remove();
  $("journal-empty").hidden = $("journal").children.length > 0;
  if (transactions.length) loadTicket().catch(failed);
  render();
}

function noticed(row) {
  const request = records(row.request_records);
  if (!request.CB) return; // not a payment: nothing for the screen to say
  if (state.awaiting && state.awaiting.peer === row.peer) state.awaiting = null;
  const amount = frenchAmount(request.CB.meaning);
  const proxied = row.proxy && row.proxy.terminal; // the screen says the real terminal answered, and what it said
  state.result = { verdict: verdict(row), amount, at: Date.now() / 1000, proxied, said: terminalSaid(row) };
  note(`Transaction #${row.id}: ${row.outcome}.`); // what this result came from, not what an earlier one did
}

function terminalSaid(row) {
  // what the real terminal sent, as a row of its own, when the POS got something else (an outcome on the way)
  const relayed = row.proxy;
  if (!relayed || relayed.terminal_answer == null || relayed.terminal_answer === row.answer) return null;
  return { answer: relayed.terminal_answer, answer_records: relayed.terminal_answer_records };
}

function journalRow(row) {
  const request = records(row.request_records);
  const judged = verdict(row);
  const { CA: pos, CD: action, CB: amount } = request;
  const parts = [pos && `POS ${pos.value}`, action && action.meaning, amount && amount.meaning];
  const what = parts.filter(Boolean).join(" ");
  const took = row.acted != null ? `${(row.acted - row.received).toFixed(2)} s` : "";
  const summary = el(
    "summary",
    {},
    el("span", { class: "id", text: `#${row.id}` }),
    el("span", { class: "when", text: clock(row.received) }),
    el(
      "span",
      { class: "what" },
      `${what || "unreadable request"} → `,
      el("span", { class: "result", text: judged.summary }),
    ),
    el("span", { class: "took", text: took }),
    row.proxy && el("span", { class: "via", text: proxiedSummary(row) }), // a line of its own: never cut off
  );
  return el("li", { "data-id": row.id }, el("details", { "data-tone": judged.tone }, summary, entryBody(row, took)));
}

function proxiedSummary(row) {
  const said = terminalSaid(row);
  const text = `proxied to ${row.proxy.terminal}`;
  return said ? `${text}, the terminal said ${verdict(said).summary}` : text;
}

function entryBody(row, took) {
  const rule = row.rule ? `, rule ${row.rule}` : "";
  const when = `received ${clock(row.received, true)}, answered after ${took || "—"}`;
  const meta = `${row.peer}, ${when}; outcome ${row.outcome}${rule}`;
  const said = terminalSaid(row);
  const got = [row.answer_records, row.answer ?? "(no answer)"];
  // what the POS got beside what the terminal sent, the records they do not share marked
  const answer = said
    ? [
        el("p", { class: "meta changed", text: CHANGED }),
        el(
          "div",
          { class: "compare" },
          recordTable("Answer", ...got, "Answer the POS got", said.answer_records),
          recordTable("Terminal's answer", said.answer_records, said.answer, "The terminal's own answer", got[0]),
        ),
      ]
    : [recordTable("Answer", ...got)];
  return el(
    "div",
    { class: "entry-body" },
    el("p", { class: "meta", text: meta }),
    recordTable("Request", row.request_records, row.request),
    ...answer,
    row.proxy && proxySection(row.proxy),
  );
}

function recordTable(title, list, frame, heading = title, other = null) {
  const head = el("tr", {}, ...["Tag", "Name", "Value", "Meaning"].map((text) => el("th", { scope: "col", text })));
  const shared = new Set((other || []).map((record) => `${record.tag}=${record.value}`));
  const rows = (list || []).map((record) => {
    const cells = [record.tag, record.name, record.value, record.meaning ?? ""].map((text) => el("td", { text }));
    cells[0].title = record.name; // where the name's column is left out, beside another table
    return el("tr", { "data-differs": other != null && !shared.has(`${record.tag}=${record.value}`) }, ...cells);
  });
  const table = list ? el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)) : el("p", { text: "no tags" });
  const raw = el("p", { class: "frame", text: frame });
  return el("section", { "aria-label": title }, el("h4", { text: heading }), table, raw);
}

function proxySection(relayed) {
  // the TCP segments of both directions, in ms from the request's first byte, and the terminal's close
  const ms = (seconds) => `+${(seconds * 1000).toFixed(1)}`;
  const from = (who) => relayed.segments.filter((segment) => segment.from === who);
  const told = (list) => `${list.reduce((sum, segment) => sum + segment.size, 0)} bytes in ${list.length}`;
  const [pos, terminal] = [from("pos"), from("terminal")];
  const closed = relayed.terminal_closed
    ? `closed the line at ${ms(relayed.terminal_closed_at)} ms`
    : "did not close the line";
  const sent = terminal.length ? `the terminal ${told(terminal)}` : "the terminal nothing";
  const meta = `The POS sent ${told(pos)} segment${pos.length === 1 ? "" : "s"}, ${sent}; the terminal ${closed}.`;
  const head = el("tr", {}, ...["Direction", "Time (ms)", "Bytes"].map((text) => el("th", { scope: "col", text })));
  const row = (...cells) => el("tr", {}, ...cells.map((text) => el("td", { text })));
  const rows = relayed.segments.map((segment) =>
    row(segment.from === "pos" ? "POS → terminal" : "terminal → POS", ms(segment.at), String(segment.size)),
  );
  if (relayed.terminal_closed) rows.push(row("closed by the terminal", ms(relayed.terminal_closed_at), ""));
  return el(
    "section",
    { "aria-label": "Proxy" },
    el("h4", { text: `Relayed to the real terminal at ${relayed.terminal}` }),
    el("p", { class: "meta", text: meta }),
    el(
      "table",
      { class: "segments", "aria-label": "Segments" },
      el("thead", {}, head),
      el("tbody", {}, ...rows),
    ),
  );
}

function clock(epoch, precise = false) {
  const date = new Date(epoch * 1000);
  const text = date.toLocaleTimeString("en-GB", { hour12: false });
  return precise ? `${text}.${String(date.getMilliseconds()).padStart(3, "0")}` : text;
}

// -- the ticket

async function loadTicket() {
  const read = await aboutShown("GET", "/ticket");
  if (!read) return;
  state.ticket = read.ticket;
  showTicket();
}

function showTicket() {
  // behind --proxy the real terminal prints: the simulator's ticket, of an answer it gave the POS in the
  // terminal's place, would pass for one that no terminal printed
  const ticket = state.proxy ? null : state.ticket;
  $("ticket").textContent = ticket || "";
  $("ticket").hidden = !ticket;
  $("no-ticket").hidden = Boolean(ticket);
  const none = "No ticket yet: the last payment's ticket appears here.";
  $("no-ticket").textContent = state.proxy ? proxiedTicket() : none;
}

function proxiedTicket() {
  const own = "The real terminal prints its own tickets: one it sends the POS is in its answer's tags.";
  const said = state.newest && terminalSaid(state.newest);
  if (!said) return own;
  const changed = `An outcome on the way (${state.newest.outcome}) changed what the POS got`;
  return `${changed}; the real terminal said ${verdict(said).title}. ${own} The simulator's are not shown.`;
}

// -- settings and the queue

async function loadPage() {
  const response = await fetch("/ui/page.json");
  const built = await response.json();
  state.form = built.settings;
  state.keys = built.keys;
  state.buttons = built.buttons;
  state.screen = built.screen;
  for (const button of document.querySelectorAll("[data-button]")) {
    button.title = state.buttons[button.dataset.button].title; // what the POS gets
  }
  $("shortcuts").textContent = `Keys: ${state.keys.map(({ key, label }) => `${key} ${label}`).join(" · ")}`;
  for (const row of state.form) {
    $(row.first ? "settings-first" : "settings-more").append(field(row));
    if (row.suggestions.length) {
      const options = row.suggestions.map((value) => el("option", { value }));
      document.body.append(el("datalist", { id: `suggest-${row.name}` }, ...options));
    }
  }
}

function field(row) {
  const id = `setting-${row.name}`;
  const words = row.name.replace(/_/g, " ");
  const label = el("label", { for: id }, words[0].toUpperCase() + words.slice(1), " ", el("code", { text: row.flag }));
  const control = input(id, row);
  control.name = row.name;
  control.title = row.help;
  control.addEventListener("change", () => changeSetting(row, control));
  if (row.kind === "flag") return el("div", { class: "field flag" }, control, label); // a box before its label
  return el("div", { class: "field" }, label, control);
}

function input(id, row) {
  if (row.kind === "flag") return el("input", { id, type: "checkbox" });
  if (row.kind === "choice") {
    return el("select", { id }, ...row.choices.map((value) => el("option", { value, text: value })));
  }
  if (row.kind === "number") return el("input", { id, type: "number", min: 0, step: "any", inputmode: "decimal" });
  const list = row.suggestions.length ? `suggest-${row.name}` : null;
  return el("input", { id, type: "text", autocomplete: "off", list });
}

function valueOf(row, control) {
  if (row.kind === "flag") return control.checked;
  if (row.kind === "number" && control.value !== "") return Number(control.value);
  return control.value; // an empty number is sent as it is, for the API to refuse rather than to read 0
}

async function changeSetting(row, control) {
  const status = $("settings-status");
  const value = valueOf(row, control);
  try {
    const saved = await aboutShown("PATCH", "/settings", { [row.name]: value });
    if (!saved) return; // saved on the terminal shown before
    showSettings(saved);
    control.parentElement.removeAttribute("data-error");
    status.className = "status";
    status.textContent = `Saved: ${row.name} ${typeof value === "boolean" ? (value ? "on" : "off") : value}`;
  } catch (error) {
    control.parentElement.setAttribute("data-error", "");
    status.className = "status error";
    status.textContent = error.message;
    loadSettings(true).catch(failed); // the field shows the value in force again
  }
}

async function loadSettings(all = false) {
  const values = await aboutShown("GET", "/settings");
  if (values) showSettings(values, all);
}

function showSettings(values, all = false) {
  state.merchant = values.merchant_name || "";
  state.proxy = values.proxy || null;
  showTicket();
  for (const row of state.form) {
    const control = $(`setting-${row.name}`);
    const typing = control === document.activeElement && control.type === "text" && !all;
    if (!control || !(row.name in values) || typing) continue;
    const value = values[row.name];
    if (row.kind === "flag") control.checked = Boolean(value);
    else control.value = Array.isArray(value) ? value.join(",") : value ?? row.unset ?? "";
  }
  render();
}

async function loadQueue() {
  const queue = await aboutShown("GET", "/outcomes");
  if (queue) showQueue(queue);
}

function showQueue({ queued }) {
  $("queue").replaceChildren(...queued.map((text) => el("li", { text })));
  $("queue-empty").hidden = queued.length > 0;
}

function wireQueue() {
  const status = $("queue-status");
  const run = async (method, body) => {
    try {
      const queue = await aboutShown(method, "/outcomes", body);
      if (!queue) return false; // done on the terminal shown before
      showQueue(queue);
      status.className = "status";
      status.textContent = method === "POST" ? `Queued: ${body.outcomes[0]}` : "Queue cleared";
      return true;
    } catch (error) {
      status.className = "status error";
      status.textContent = error.message;
      return false;
    }
  };
  $("queue-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("queue-outcome");
    if (await run("POST", { outcomes: [input.value.trim()] })) input.value = "";
  });
  $("queue-clear").addEventListener("click", () => run("DELETE"));
}

// -- terminals

function showTerminals() {
  const select = $("terminal");
  $("terminal-choice").hidden = state.terminals.length < 2;
  const waiting = new Set(state.pending.map((entry) => entry.terminal));
  const options = state.terminals.map(({ name, port }) =>
    el("option", { value: name, text: `${name} (port ${port})${waiting.has(name) ? " · paying" : ""}` }),
  );
  select.replaceChildren(...options);
  select.value = state.terminal;
}

function chooseTerminal(name) {
  state.terminal = name;
  state.shown += 1; // what is still coming about the terminal shown before is dropped
  state.chip = state.awaiting = state.result = state.newest = state.ticket = null;
  state.lastId = 0;
  state.journalLoaded = false;
  $("journal").replaceChildren();
  history.replaceState(null, "", `#terminal=${encodeURIComponent(name)}`);
  refresh().catch(failed);
}

// -- start

async function refresh() {
  await Promise.all([loadSettings(), loadQueue(), newTransactions(), loadTicket()]);
  render();
}

async function start() {
  const { terminals } = await api("GET", "/terminals");
  state.terminals = terminals;
  const wanted = new URLSearchParams(location.hash.slice(1)).get("terminal");
  state.terminal = terminals.some((terminal) => terminal.name === wanted) ? wanted : terminals[0].name;
  showTerminals();
  listen();
}

async function main() {
  wireKeys();
  wireQueue();
  $("terminal").addEventListener("change", (event) => chooseTerminal(event.target.value));
  $("settings").addEventListener("submit", (event) => event.preventDefault());
  await loadPage();
  render();
  showTicket();
  setInterval(render, 1000); // the clock, the countdown of a pending payment, a result going back to idle
  await start();
}

main().catch((error) => {
  setLink("locked", `error: ${error.message}`);
  throw error;
});
