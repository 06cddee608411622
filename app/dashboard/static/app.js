// Tailcast dashboard: a live table of the latest item per (topic, key), a throughput
// chart and a publish form. Plain browser JavaScript, no framework, no build step.
//
// Everything that comes from an item or the API is put on the page with textContent or
// attributes, never parsed as HTML.
"use strict";

(() => {
  const DEFAULT_ROWS = 500;
  const MAX_ROWS = 10000;
  const CHART_SPAN_MIN_MS = 60_000;
  const CHART_SPAN_MAX_MS = 300_000;
  const PREVIEW_CHARS = 160;
  const REPLAY_FRAME_MS = 250;
  const MAX_FLASHES = 40;
  const TITLE_CHARS = 2000;
  const TOPICS_SHOWN = 200;
  const TOPICS_EVERY_MS = 2000;
  const SUBSCRIBER_TOKEN = "tailcast.subscriberToken";
  const PUBLISH_TOKEN = "tailcast.publishToken";

  const $ = (id) => document.getElementById(id);

  // Settings from the page URL ----------------------------------------------------------

  const pageUrl = new URL(location.href);
  const api = (pageUrl.searchParams.get("api") || "").replace(/\/+$/, "");
  const maxRows = parseRows(pageUrl.searchParams.get("rows"));
  let topics = cleanTopics(pageUrl.searchParams.getAll("topic"));
  const replayLast = parseLast(pageUrl.searchParams.get("last"));
  const apiHost = api ? hostOf(api) : location.host;

  // A token pasted into the address bar moves to sessionStorage and out of the URL.
  if (pageUrl.searchParams.has("access_token")) {
    const pasted = pageUrl.searchParams.get("access_token");
    if (pasted) sessionStorage.setItem(SUBSCRIBER_TOKEN, pasted);
    pageUrl.searchParams.delete("access_token");
    history.replaceState(null, "", pageUrl);
  }

  function hostOf(url) {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  }

  function parseRows(value) {
    const rows = Number.parseInt(value || "", 10);
    return Number.isFinite(rows) && rows >= 1 ? Math.min(rows, MAX_ROWS) : DEFAULT_ROWS;
  }

  function parseLast(value) {
    // Only the newest this many cached items on a fresh stream; absent or invalid: all.
    const last = Number.parseInt(value || "", 10);
    return Number.isFinite(last) && last >= 1 ? Math.min(last, Number.MAX_SAFE_INTEGER) : null;
  }

  function cleanTopics(values) {
    // Empty values count as absent, as the server has it.
    return [...new Set(values.map((topic) => topic.trim()).filter(Boolean))];
  }

  function endpoint(path) {
    // Relative to the page when no ?api= is given, so a path prefix in front of the
    // service keeps working.
    const base = api ? `${api}/` : new URL(".", location.href).href;
    return new URL(path, base);
  }

  function subscriberToken() {
    return sessionStorage.getItem(SUBSCRIBER_TOKEN) || "";
  }

  function authHeaders(token) {
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  // Ids and time -------------------------------------------------------------------------

  // Ids are "<ms>-<seq>" with up to 20 digits each: compare them as digit strings, since
  // a sequence may not fit in a double.
  function parseId(text) {
    const match = /^(\d{1,20})-(\d{1,20})$/.exec(text);
    return match ? [match[1].replace(/^0+(?=\d)/, ""), match[2].replace(/^0+(?=\d)/, "")] : null;
  }

  function compareDigits(a, b) {
    return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  }

  function compareIds(a, b) {
    return compareDigits(a[0], b[0]) || compareDigits(a[1], b[1]);
  }

  let clockOffset = 0; // server time minus browser time, from /stats
  const serverNow = () => Date.now() + clockOffset;

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  const numberFormat = new Intl.NumberFormat();

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit === 0 || value >= 100 ? 0 : 1)} ${units[unit]}`;
  }

  // The connection state ------------------------------------------------------------------

  const stateEl = $("connection-state");
  const resetEl = $("reset-reason");
  const streamErrorEl = $("stream-error");

  function setState(state) {
    stateEl.dataset.state = state;
    stateEl.textContent = state;
  }

  function showReset(info) {
    const reason = typeof info.reason === "string" ? info.reason : "unknown";
    resetEl.textContent = `reset: ${reason}`;
    resetEl.dataset.reason = reason;
    resetEl.title = `The server could not resume after ${info.requested ?? "?"}; ` +
      `the oldest id it still has is ${info.oldest ?? "none"}. ` +
      `Rows from before the reset stay until they expire.`;
    resetEl.hidden = false;
  }

  // The latest item per (topic, key) --------------------------------------------------------

  // Insertion order is arrival order, which is id order within one history (replays come
  // in id order and live items after them), so the newest rows are the Map's last ones.
  const latest = new Map();
  let lastId = null;
  let replaying = false; // between a stream's open and its live event
  let quiet = false; // the first replay of a fresh stream: nothing in it is news

  function rowKey(topic, key) {
    return `${topic}\u0000${key}`;
  }

  // A number a double would round: 16 or more digits in a row, or an exponent of three digits
  // (the server's own rule, streaming/exactjson.py). The server keeps such numbers exactly;
  // so does this page where the browser gives a parsed number's source text
  // (JSON.rawJSON); elsewhere they show rounded.
  const INEXACT = /[\d.]{16}|[eE][+-]?\d{3}/;

  function exactNumber(_key, value, context) {
    const source = context && context.source;
    return typeof value === "number" && INEXACT.test(source) ? JSON.rawJSON(source) : value;
  }

  function dataText(source, data) {
    if (typeof JSON.rawJSON === "function" && INEXACT.test(source)) {
      return JSON.stringify(JSON.parse(source, exactNumber).data) ?? "null";
    }
    return JSON.stringify(data) ?? "null"; // data parsed from JSON: no cycles
  }

  function onItem(event) {
    let item;
    try {
      item = JSON.parse(event.data);
    } catch {
      return;
    }
    const id = parseId(String(item.id));
    if (!id) return;
    if (lastId && compareIds(id, lastId) <= 0) return; // seen already (or older)
    lastId = id;
    const text = dataText(event.data, item.data);
    const key = rowKey(item.topic, item.key);
    latest.delete(key);
    latest.set(key, {
      id: item.id,
      topic: String(item.topic),
      key: String(item.key),
      text: text.length > TITLE_CHARS ? `${text.slice(0, TITLE_CHARS)}…` : text,
      createdAt: Number(item.created_at),
      expiresAt: Number(item.expires_at),
      flash: !quiet,
    });
    scheduleRender();
  }

  function dropExpired(now) {
    let dropped = false;
    for (const [key, entry] of latest) {
      if (entry.expiresAt <= now) {
        latest.delete(key);
        dropped = true;
      }
    }
    return dropped;
  }

  // The table --------------------------------------------------------------------------------

  const tbody = $("rows");
  const emptyEl = $("empty");
  const rowCountEl = $("row-count");
  const rendered = new Map(); // row key -> {tr, cells, id, entry}
  let renderPending = false;
  let lastRender = 0;
  let generation = 0;

  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    // While a replay pours in, draw a few times a second: the events need the main
    // thread more than the table needs every frame.
    const wait = replaying ? lastRender + REPLAY_FRAME_MS - performance.now() : 0;
    if (wait > 0) setTimeout(() => requestAnimationFrame(render), wait);
    else requestAnimationFrame(render);
  }

  function topicHue(topic) {
    let hash = 0;
    for (let i = 0; i < topic.length; i += 1) hash = (hash * 31 + topic.charCodeAt(i)) | 0;
    return ((hash % 360) + 360) % 360;
  }

  function cell(tr, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    tr.append(td);
    return td;
  }

  function createRow() {
    const tr = document.createElement("tr");
    const chip = document.createElement("span");
    chip.className = "chip";
    cell(tr, "topic").append(chip);
    const key = cell(tr, "key mono");
    const id = cell(tr, "id mono");
    const age = cell(tr, "age num");
    const data = cell(tr, "data mono");
    const expires = cell(tr, "expires num");
    const left = document.createElement("span");
    left.className = "left";
    const bar = document.createElement("span");
    bar.className = "bar";
    expires.append(left, bar);
    return { tr, cells: { chip, key, id, age, data, left, bar } };
  }

  function fill(row, entry) {
    const { chip, key, id, data } = row.cells;
    row.tr.dataset.topic = entry.topic;
    row.tr.dataset.key = entry.key;
    chip.textContent = entry.topic;
    chip.title = entry.topic;
    chip.style.setProperty("--hue", String(topicHue(entry.topic)));
    key.textContent = entry.key;
    key.title = entry.key;
    id.textContent = entry.id;
    id.title = new Date(entry.createdAt).toISOString();
    data.textContent = entry.text.length > PREVIEW_CHARS
      ? `${entry.text.slice(0, PREVIEW_CHARS)}…`
      : entry.text;
    data.title = entry.text;
    row.id = entry.id;
    row.entry = entry;
  }

  function flash(rows) {
    // Restarting a CSS animation takes a style flush: one for all rows, not one per row.
    if (!rows.length) return;
    for (const tr of rows) tr.classList.remove("fresh");
    void tbody.offsetWidth;
    for (const tr of rows) tr.classList.add("fresh");
  }

  function tickRow(row, now) {
    const { entry } = row;
    const { age, left, bar } = row.cells;
    age.textContent = duration(now - entry.createdAt);
    const remaining = entry.expiresAt - now;
    left.textContent = duration(remaining + 999);
    const ttl = Math.max(1, entry.expiresAt - entry.createdAt);
    bar.style.setProperty("--left", String(Math.min(1, Math.max(0, remaining / ttl))));
    row.tr.classList.toggle("soon", remaining < 10_000);
  }

  function newest() {
    const shown = [];
    let skip = latest.size - maxRows;
    for (const [key, entry] of latest) {
      if (skip > 0) {
        skip -= 1;
        continue;
      }
      shown.push([key, entry]);
    }
    return shown.reverse();
  }

  function render() {
    if (!renderPending) return; // already drawn by the once-a-second tick
    renderPending = false;
    lastRender = performance.now();
    generation += 1;
    const now = serverNow();
    let cursor = tbody.firstChild;
    const changed = [];
    for (const [key, entry] of newest()) {
      let row = rendered.get(key);
      if (!row) {
        row = createRow();
        rendered.set(key, row);
      }
      if (row.id !== entry.id) {
        fill(row, entry);
        tickRow(row, now);
        if (entry.flash) changed.push(row.tr);
      }
      row.generation = generation;
      if (row.tr === cursor) {
        cursor = cursor.nextSibling;
      } else {
        tbody.insertBefore(row.tr, cursor);
      }
    }
    for (const [key, row] of rendered) {
      if (row.generation !== generation) {
        row.tr.remove();
        rendered.delete(key);
      }
    }
    flash(changed.slice(0, MAX_FLASHES)); // newest first; a flood would only flicker
    emptyEl.hidden = latest.size > 0;
    const total = numberFormat.format(latest.size);
    rowCountEl.textContent = latest.size > maxRows
      ? `newest ${numberFormat.format(maxRows)} of ${total} keys`
      : `${total} ${latest.size === 1 ? "key" : "keys"}`;
  }

  function clearRows() {
    latest.clear();
    lastId = null;
    scheduleRender();
  }

  // Once a second: ages, countdowns and expiries.
  setInterval(() => {
    const now = serverNow();
    if (dropExpired(now)) renderPending = true;
    render();
    for (const row of rendered.values()) tickRow(row, now);
  }, 1000);

  // The stream --------------------------------------------------------------------------------

  let source = null;
  let reopenTimer = 0;
  let reopenDelay = 1000;

  function openStream() {
    clearTimeout(reopenTimer);
    if (source) source.close();
    const url = endpoint("stream");
    for (const topic of topics) url.searchParams.append("topic", topic);
    // A new EventSource sends no Last-Event-ID: resume with ?since= instead, and then
    // without ?last=, which would skip items. (EventSource's own reconnects send
    // Last-Event-ID, which makes the server ignore ?last=.)
    if (lastId) url.searchParams.set("since", `${lastId[0]}-${lastId[1]}`);
    else if (replayLast !== null) url.searchParams.set("last", String(replayLast));
    const token = subscriberToken();
    if (token) url.searchParams.set("access_token", token);
    setState("connecting");
    const es = new EventSource(url);
    source = es;
    const mine = (handler) => (event) => {
      if (es === source) handler(event);
    };
    es.addEventListener("open", mine(() => {
      replaying = true;
      quiet = lastId === null; // a resume's replay is what we missed: it flashes
      streamErrorEl.hidden = true;
      setState("replaying");
    }));
    es.addEventListener("item", mine(onItem));
    es.addEventListener("live", mine((event) => {
      let info = {};
      try {
        info = JSON.parse(event.data) || {};
      } catch {
        // keep the defaults
      }
      stateEl.title = `Replayed ${info.replayed ?? "?"} items up to ${info.cutoff ?? "none"}; ` +
        "live since.";
      replaying = false;
      quiet = false;
      reopenDelay = 1000;
      render(); // "live" means the replay is on screen, not waiting for a frame
      setState("live");
    }));
    es.addEventListener("reset", mine((event) => {
      let info = {};
      try {
        info = JSON.parse(event.data) || {};
      } catch {
        // keep the defaults
      }
      // The replay after a reset is the server's history, whose ids may not follow ours
      // (another server, or a clock that stepped back): accept it; rows stay unique per
      // (topic, key) all the same.
      lastId = null;
      showReset(info);
      setState("reset");
    }));
    es.addEventListener("error", mine(() => {
      replaying = false;
      setState("reconnecting");
      // EventSource retries by itself after network errors; after an HTTP error it
      // gives up (CLOSED), so try again later and say why.
      if (es.readyState === EventSource.CLOSED) {
        explainRefusal();
        reopenTimer = setTimeout(openStream, reopenDelay);
        reopenDelay = Math.min(reopenDelay * 2, 30_000);
      }
    }));
  }

  async function explainRefusal() {
    const url = endpoint("items");
    for (const topic of topics) url.searchParams.append("topic", topic);
    url.searchParams.set("limit", "1");
    try {
      const response = await fetch(url, { headers: authHeaders(subscriberToken()) });
      if (response.ok) return;
      const problem = await readProblem(response);
      streamErrorEl.textContent = `Stream refused: ${problem.status} ${problem.title}` +
        (problem.detail ? ` — ${problem.detail}` : "");
    } catch (error) {
      streamErrorEl.textContent = `Cannot reach ${apiHost}: ${error.message}`;
    }
    streamErrorEl.hidden = false;
  }

  async function readProblem(response) {
    let body = {};
    try {
      body = await response.json();
    } catch {
      // not JSON: status and reason phrase only
    }
    return {
      status: response.status,
      title: typeof body.title === "string" ? body.title : response.statusText,
      detail: typeof body.detail === "string" ? body.detail : "",
    };
  }

  // Filters: topics and the subscriber token ----------------------------------------------------

  const topicInput = $("topic-filter");
  const tokenInput = $("subscriber-token");

  function applyTopics(next) {
    topics = next;
    topicInput.value = topics.join(", ");
    showPicked();
    const url = new URL(location.href);
    url.searchParams.delete("topic");
    for (const topic of topics) url.searchParams.append("topic", topic);
    history.replaceState(null, "", url);
    clearRows();
    openStream();
  }

  $("filters").addEventListener("submit", (event) => event.preventDefault());
  topicInput.addEventListener("change", () => {
    const next = cleanTopics(topicInput.value.split(","));
    if (next.join("\u0000") !== topics.join("\u0000")) applyTopics(next);
  });
  tokenInput.addEventListener("change", () => {
    const token = tokenInput.value.trim();
    if (token) sessionStorage.setItem(SUBSCRIBER_TOKEN, token);
    else sessionStorage.removeItem(SUBSCRIBER_TOKEN);
    openStream();
  });

  // The topic list: GET /topics, picked to filter ------------------------------------------------

  const topicList = $("topic-list");
  const topicsNote = $("topics-note");
  const allTopics = $("all-topics");
  let listed = []; // the last GET /topics answer

  async function fetchTopics(filter) {
    const url = endpoint("topics");
    for (const topic of filter) url.searchParams.append("topic", topic);
    url.searchParams.set("limit", String(TOPICS_SHOWN));
    const response = await fetch(url, {
      headers: authHeaders(subscriberToken()),
      cache: "no-store",
    });
    if (!response.ok) {
      const problem = await readProblem(response);
      const error = new Error(`${problem.status} ${problem.title}` +
        (problem.detail ? ` — ${problem.detail}` : ""));
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  async function pollTopics() {
    try {
      let answer;
      try {
        answer = await fetchTopics([]);
        topicsNote.hidden = true;
      } catch (error) {
        // A token that may not read every topic may still list the chosen ones.
        if (error.status !== 403 || !topics.length) throw error;
        answer = await fetchTopics(topics);
        topicsNote.textContent = "Only the chosen topics: the token cannot list every topic.";
        topicsNote.hidden = false;
      }
      listed = Array.isArray(answer) ? answer : [];
      if (listed.length >= TOPICS_SHOWN) {
        topicsNote.textContent = `The first ${TOPICS_SHOWN} topics by name.`;
        topicsNote.hidden = false;
      }
      showTopics();
    } catch (error) {
      topicsNote.textContent = `/topics unavailable: ${error.message}`;
      topicsNote.hidden = false;
    }
    setTimeout(pollTopics, TOPICS_EVERY_MS);
  }

  function showTopics() {
    const items = listed.map((entry) => {
      const topic = String(entry.topic);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "topic-pick";
      button.dataset.topic = topic;
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = topic;
      chip.title = topic;
      chip.style.setProperty("--hue", String(topicHue(topic)));
      const counts = document.createElement("span");
      counts.className = "counts";
      const cached = Number(entry.items);
      const subscribers = Number(entry.subscribers);
      counts.textContent = `${numberFormat.format(cached)} ${cached === 1 ? "item" : "items"} · ` +
        `${numberFormat.format(subscribers)} ${subscribers === 1 ? "stream" : "streams"}`;
      counts.title = `${bytes(Number(entry.bytes))}; newest ${entry.newest ?? "none"}`;
      button.append(chip, counts);
      const li = document.createElement("li");
      li.append(button);
      return li;
    });
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No topics yet.";
      items.push(li);
    }
    topicList.replaceChildren(...items);
    showPicked();
  }

  function showPicked() {
    for (const button of topicList.querySelectorAll(".topic-pick")) {
      const picked = topics.length === 1 && topics[0] === button.dataset.topic;
      button.setAttribute("aria-pressed", String(picked));
    }
    allTopics.setAttribute("aria-pressed", String(!topics.length));
  }

  topicList.addEventListener("click", (event) => {
    const button = event.target.closest(".topic-pick");
    if (!button) return;
    const topic = button.dataset.topic;
    // Picking the shown topic again goes back to every topic.
    applyTopics(topics.length === 1 && topics[0] === topic ? [] : [topic]);
  });
  allTopics.addEventListener("click", () => {
    if (topics.length) applyTopics([]);
  });

  // /stats and the chart ------------------------------------------------------------------------

  const canvas = $("chart");
  const statsNote = $("stats-note");
  const samples = []; // {t, rate, subscribers}, t in server ms
  let previousStats = null;

  async function pollStats() {
    const sent = Date.now();
    try {
      const response = await fetch(endpoint("stats"), {
        headers: authHeaders(subscriberToken()),
        cache: "no-store",
      });
      if (!response.ok) {
        const problem = await readProblem(response);
        throw new Error(`${problem.status} ${problem.title}`);
      }
      const stats = await response.json();
      clockOffset = stats.time - (sent + Date.now()) / 2;
      addSample(stats);
      showStats(stats);
      statsNote.hidden = true;
    } catch (error) {
      statsNote.textContent = `/stats unavailable: ${error.message}`;
      statsNote.hidden = false;
    }
    setTimeout(pollStats, Math.max(200, 1000 - (Date.now() - sent)));
  }

  function addSample(stats) {
    let rate = null;
    if (previousStats) {
      const published = stats.items_published - previousStats.items_published;
      const seconds = (stats.time - previousStats.time) / 1000;
      // Counters go back to zero when the server restarts: leave a gap there.
      if (published >= 0 && seconds > 0) rate = published / seconds;
    }
    previousStats = stats;
    samples.push({ t: stats.time, rate, subscribers: stats.subscribers });
    while (samples.length && samples[0].t < stats.time - CHART_SPAN_MAX_MS) samples.shift();
    const shown = rate === null ? "–" : rate < 10 ? rate.toFixed(1) : Math.round(rate);
    $("rate-now").textContent = String(shown);
    $("subscribers-now").textContent = numberFormat.format(stats.subscribers);
    drawChart();
  }

  function showStats(stats) {
    $("stat-cache-items").textContent = numberFormat.format(stats.cache_items);
    $("stat-cache-bytes").textContent = bytes(stats.cache_bytes);
    $("stat-published").textContent = numberFormat.format(stats.items_published);
    $("stat-delivered").textContent = numberFormat.format(stats.items_delivered);
    const resets = Object.values(stats.resets || {}).reduce((sum, n) => sum + n, 0);
    $("stat-resets").textContent = numberFormat.format(resets);
    $("stat-resets").title = Object.entries(stats.resets || {})
      .map(([reason, n]) => `${reason}: ${n}`).join("\n");
    $("stat-uptime").textContent = duration(stats.uptime * 1000);
    $("api-origin").textContent = `${apiHost} · ${stats.backend}`;
  }

  function niceCeiling(value) {
    if (value <= 0) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (value <= step * power) return step * power;
    }
    return 10 * power;
  }

  function drawChart() {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue(name).trim();
    const pad = { left: 34, right: 26, top: 8, bottom: 18 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const end = samples.length ? samples[samples.length - 1].t : serverNow();
    const first = samples.length ? samples[0].t : end;
    const span = Math.min(CHART_SPAN_MAX_MS, Math.max(CHART_SPAN_MIN_MS, end - first));
    const x = (t) => pad.left + plotW * (1 - (end - t) / span);
    const rateMax = niceCeiling(Math.max(0, ...samples.map((s) => s.rate ?? 0)));
    // An even whole number, so the middle label is a whole number of subscribers too.
    const subsMax = 2 * Math.ceil(Math.max(1, ...samples.map((s) => s.subscribers)) / 2);
    const yRate = (v) => pad.top + plotH * (1 - v / rateMax);
    const ySubs = (v) => pad.top + plotH * (1 - v / subsMax);

    ctx.font = `11px ${css.getPropertyValue("--font-sans")}`;
    ctx.lineWidth = 1;
    ctx.strokeStyle = color("--grid");
    ctx.fillStyle = color("--muted");
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i += 1) {
      const y = Math.round(pad.top + (plotH * i) / 4) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, y);
      ctx.lineTo(pad.left + plotW, y);
      ctx.stroke();
      if (i % 2 === 0) {
        ctx.textAlign = "right";
        ctx.fillText(axisLabel(rateMax * (1 - i / 4)), pad.left - 6, y);
        ctx.textAlign = "left";
        ctx.fillText(axisLabel(subsMax * (1 - i / 4)), pad.left + plotW + 6, y);
      }
    }
    ctx.textBaseline = "alphabetic";
    ctx.textAlign = "left";
    ctx.fillText(`−${Math.round(span / 60_000) || 1} min`, pad.left, height - 4);
    ctx.textAlign = "right";
    ctx.fillText("now", pad.left + plotW, height - 4);

    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.left, pad.top - 2, plotW, plotH + 4);
    ctx.clip();
    drawRate(ctx, x, yRate, pad.top + plotH, color("--rate"));
    drawSubscribers(ctx, x, ySubs, color("--subs"));
    ctx.restore();
  }

  function axisLabel(value) {
    if (value >= 1000) return `${+(value / 1000).toFixed(1)}k`;
    return String(+value.toFixed(value < 10 ? 1 : 0));
  }

  function runs(key) {
    // Consecutive samples with a value, split at gaps.
    const result = [];
    let current = [];
    for (const sample of samples) {
      if (sample[key] === null) {
        if (current.length) result.push(current);
        current = [];
      } else {
        current.push(sample);
      }
    }
    if (current.length) result.push(current);
    return result;
  }

  function drawRate(ctx, x, y, bottom, stroke) {
    const gradient = ctx.createLinearGradient(0, y(0) - (bottom - y(0)), 0, bottom);
    gradient.addColorStop(0, `${stroke}66`);
    gradient.addColorStop(1, `${stroke}05`);
    for (const run of runs("rate")) {
      ctx.beginPath();
      run.forEach((s, i) => (i ? ctx.lineTo(x(s.t), y(s.rate)) : ctx.moveTo(x(s.t), y(s.rate))));
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.strokeStyle = stroke;
      ctx.stroke();
      ctx.lineTo(x(run[run.length - 1].t), bottom);
      ctx.lineTo(x(run[0].t), bottom);
      ctx.closePath();
      ctx.fillStyle = gradient;
      ctx.fill();
    }
  }

  function drawSubscribers(ctx, x, y, stroke) {
    ctx.beginPath();
    samples.forEach((s, i) => {
      if (i === 0) {
        ctx.moveTo(x(s.t), y(s.subscribers));
      } else {
        ctx.lineTo(x(s.t), y(samples[i - 1].subscribers));
        ctx.lineTo(x(s.t), y(s.subscribers));
      }
    });
    ctx.lineWidth = 1.5;
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = stroke;
    ctx.stroke();
    ctx.setLineDash([]);
  }

  new ResizeObserver(drawChart).observe(canvas);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawChart);

  // The publish form ----------------------------------------------------------------------------

  const form = $("publish");
  const result = $("publish-result");

  function say(kind, parts) {
    result.dataset.status = kind;
    const nodes = parts.map(([className, text]) => {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text;
      return span;
    });
    result.replaceChildren(...nodes);
  }

  function draft() {
    const fields = form.elements;
    const text = fields.data.value.trim();
    if (!text) throw new Error("data is required: any JSON value, such as 42 or \"hello\"");
    try {
      JSON.parse(text);
    } catch (error) {
      throw new Error(`data is not valid JSON: ${error.message}`);
    }
    const extra = {};
    const topic = fields.topic.value.trim();
    const key = fields.key.value.trim();
    const ttl = fields.ttl.value.trim();
    if (topic) extra.topic = topic;
    if (key) extra.key = key;
    if (ttl) {
      const seconds = Number(ttl);
      if (!Number.isFinite(seconds)) throw new Error(`ttl is not a number: ${ttl}`);
      extra.ttl = seconds;
    }
    // The data as typed, not as parsed: parsing rounds a number a double cannot hold.
    const rest = JSON.stringify(extra);
    return `{"data":${text}${rest === "{}" ? "}" : `,${rest.slice(1)}`}`;
  }

  form.elements.token.value = sessionStorage.getItem(PUBLISH_TOKEN) || "";

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = draft();
    } catch (error) {
      say("invalid", [["detail", error.message]]);
      return;
    }
    const token = form.elements.token.value.trim();
    if (token) sessionStorage.setItem(PUBLISH_TOKEN, token);
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch(endpoint("items"), {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authHeaders(token) },
        body,
      });
      if (response.ok) {
        const item = await response.json();
        say("ok", [["status", String(response.status)], ["title", "Created"], ["detail", item.id]]);
      } else {
        const problem = await readProblem(response);
        say("error", [
          ["status", String(problem.status)],
          ["title", problem.title],
          ["detail", problem.detail],
        ]);
      }
    } catch (error) {
      say("error", [["detail", `Cannot reach ${apiHost}: ${error.message}`]]);
    } finally {
      button.disabled = false;
    }
  });

  // Start --------------------------------------------------------------------------------------

  $("api-origin").textContent = apiHost;
  topicInput.value = topics.join(", ");
  tokenInput.value = subscriberToken();
  openStream();
  pollStats();
  pollTopics();
})();
