// The teacher dashboard: asks for an API key once per tab, lets the teacher pick a class, then keeps the class's
// live numbers (the stream), its charts over the shown range (polled), its alerts and its lessons up to date.
// Embedded by a platform (/dashboard/embed), it is given a read-only key to one class instead, kept in memory only.

import { Api } from "./api.js";
import { byId, element } from "./dom.js";
import { clockTime, dayTime, duration } from "./format.js";
import { drawLessonCharts } from "./lesson.js";
import { DEFAULT_RISK_THRESHOLD, renderAlerts, renderArc, renderBanner, renderSessions, renderTiles } from "./panels.js";

const KEY_STORAGE = "classpulse.apiKey";
/** Capture times can run ahead of this browser's clock (other machines' clocks, a file ingested faster than real
 * time): the ranges asked for reach this far past now, so the newest seconds are never cut off. */
const LEAD_MS = 5 * 60_000;
const RECENT_MINUTES = { recent15: 15, recent60: 60, recent360: 360 };
const BUCKETS_S = [2, 5, 10, 30, 60, 300, 900, 3600];
/** Enough points for a smooth line on a laptop screen, few enough that each bucket holds several frames. */
const MAX_BUCKETS = 120;
const CHARTS_EVERY_MS = 5_000;
const SUMMARY_EVERY_TICKS = 3;
const LISTS_EVERY_TICKS = 6;
const STREAM_RETRY_MAX_MS = 15_000;
const PAST_LESSONS_LISTED = 10;

const CONNECTION_TEXT = {
  connecting: "Connecting\u2026",
  live: "Live",
  quiet: "No video right now",
  retrying: "Reconnecting\u2026",
  stopped: "Not connected",
};

function setConnection(state) {
  const badge = byId("connection");
  badge.dataset.state = state;
  badge.textContent = CONNECTION_TEXT[state];
}

function showProblem(message) {
  const problem = byId("problem");
  problem.textContent = message;
  problem.hidden = !message;
}

function bucketSeconds(spanMs) {
  return BUCKETS_S.find((seconds) => spanMs / (seconds * 1000) <= MAX_BUCKETS) ?? BUCKETS_S[BUCKETS_S.length - 1];
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** One class on screen: its state, its stream and its timers, all stopped together when another class is picked. */
class ClassBoard {
  constructor(api, record, onKeyRejected) {
    this.api = api;
    this.record = record;
    this.onKeyRejected = onKeyRejected;
    this.path = `/v1/classes/${encodeURIComponent(record.class_id)}`;
    this.emotionsOn = record.emotion_enabled;
    this.sessions = [];
    this.events = [];
    this.series = null;
    this.domain = null;
    this.shown = "recent15";
    this.videoFlowing = false;
    this.ticks = 0;
    this.busy = false;
    this.stopper = new AbortController();
    this.timer = null;
  }

  get signal() {
    return this.stopper.signal;
  }

  async start() {
    byId("board").dataset.classId = this.record.class_id;
    byId("board").dataset.expectedStudents = String(this.record.expected_students);
    this.applyMode();
    renderTiles(null, this.record, DEFAULT_RISK_THRESHOLD);
    // Timers and stream first: should the first calls fail, the next ticks load everything again.
    this.timer = setInterval(() => this.tick(), CHARTS_EVERY_MS);
    this.streamLive();
    this.busy = true;
    await this.guarded(async () => {
      await Promise.all([this.loadSessions(), this.loadEvents()]);
      this.shown = this.runningSession()?.session_id ?? "recent15";
      this.renderLessons();
      await this.refreshCharts({ withSummary: true });
    });
    this.busy = false;
  }

  stop() {
    this.stopper.abort();
    clearInterval(this.timer);
  }

  /** Handles failures of background calls: a rejected key ends the board, anything else is shown and retried. */
  async guarded(call) {
    try {
      await call();
      showProblem("");
    } catch (error) {
      if (this.signal.aborted) return;
      if (error.status === 401) this.onKeyRejected(error.message);
      else showProblem(`Could not reach ClassPulse: ${error.message}`);
    }
  }

  async tick() {
    if (this.busy) return;
    this.busy = true;
    this.ticks += 1;
    await this.guarded(async () => {
      if (this.ticks % LISTS_EVERY_TICKS === 0) {
        await Promise.all([this.loadRecord(), this.loadSessions(), this.loadEvents()]);
        this.renderLessons();
      }
      if (this.shownRange().live) await this.refreshCharts({ withSummary: this.ticks % SUMMARY_EVERY_TICKS === 0 });
    });
    this.busy = false;
  }

  runningSession() {
    return this.sessions.find((session) => session.ended_at_ms === null || session.ended_at_ms === undefined);
  }

  /** The class's size may come after the page opened (an LTI course's roster is read after its launch) or change. */
  async loadRecord() {
    this.record = await this.api.get(this.path, {}, this.signal);
    byId("board").dataset.expectedStudents = String(this.record.expected_students);
  }

  async loadSessions() {
    this.sessions = (await this.api.get(`${this.path}/sessions`, { limit: 50 }, this.signal)).items;
  }

  async loadEvents() {
    this.events = (await this.api.get(`${this.path}/events`, { limit: 50 }, this.signal)).items;
    this.renderAlertPanels();
  }

  riskThreshold() {
    return this.events.find((event) => event.index === "attention_risk")?.threshold ?? DEFAULT_RISK_THRESHOLD;
  }

  /** The shown range: a lesson (running ones reach into the future, see LEAD_MS) or the latest minutes. */
  shownRange() {
    const now = Date.now();
    const session = this.sessions.find((s) => s.session_id === this.shown);
    if (session) {
      const running = session.ended_at_ms === null || session.ended_at_ms === undefined;
      return { start: session.started_at_ms, end: running ? now + LEAD_MS : session.ended_at_ms, live: running };
    }
    return { start: now - RECENT_MINUTES[this.shown] * 60_000, end: now + LEAD_MS, live: true };
  }

  async refreshCharts({ withSummary }) {
    const range = this.shownRange();
    const visibleEnd = range.live ? Date.now() : range.end;
    const params = { from: range.start, to: range.end };
    const [series, summary] = await Promise.all([
      this.api.get(`${this.path}/timeseries`, { ...params, bucket: `${bucketSeconds(visibleEnd - range.start)}s` }, this.signal),
      withSummary && this.emotionsOn ? this.api.get(`${this.path}/summary`, { ...params, phases: 6 }, this.signal) : null,
    ]);
    const last = series.points.at(-1);
    this.series = series;
    this.domain = { start: range.start, end: Math.max(visibleEnd, last ? last.t + series.bucket_ms : 0) };
    this.setEmotionsOn(series.emotion_enabled);
    if (withSummary) renderArc(this.emotionsOn ? summary : null);
    this.redraw();
  }

  redraw() {
    if (!this.series) return;
    drawLessonCharts({
      series: this.series,
      domain: this.domain,
      record: { ...this.record, emotion_enabled: this.emotionsOn },
      sessions: this.sessions,
      events: this.events,
      riskThreshold: this.riskThreshold(),
    });
    const board = byId("board");
    board.dataset.points = String(this.series.points.length);
    board.dataset.bucketMs = String(this.series.bucket_ms);
    board.dataset.drawnAt = String(Date.now());
  }

  setEmotionsOn(on) {
    if (on === this.emotionsOn) return;
    this.emotionsOn = on;
    this.applyMode();
  }

  applyMode() {
    byId("board").dataset.emotions = this.emotionsOn ? "on" : "off";
  }

  async streamLive() {
    let retryMs = 1000;
    while (!this.signal.aborted) {
      setConnection("connecting");
      try {
        await this.api.stream(`${this.path}/stream`, (name, data) => {
          retryMs = 1000;
          if (name === "live") this.onLive(data);
          else if (name === "alert") this.onAlert(data);
        }, this.signal);
      } catch (error) {
        if (this.signal.aborted) return;
        if (error.status === 401) return this.onKeyRejected(error.message);
        if (error.status === 403 || error.status === 404) return showProblem(error.message);
      }
      if (this.signal.aborted) return;
      setConnection("retrying");
      await sleep(retryMs, this.signal);
      retryMs = Math.min(2 * retryMs, STREAM_RETRY_MAX_MS);
    }
  }

  onLive(live) {
    this.setEmotionsOn(!live.emotion_status.startsWith("off"));
    renderTiles(live, this.record, this.riskThreshold());
    setConnection(live.frames > 0 ? "live" : "quiet");
    if (this.videoFlowing !== live.frames > 0) {
      this.videoFlowing = live.frames > 0;
      renderBanner(this.events, this.videoFlowing);
    }
    byId("board").dataset.liveAt = live.at;
  }

  onAlert(event) {
    if (this.events.some((known) => known.event_id === event.event_id)) return;
    this.events = [event, ...this.events];
    this.renderAlertPanels();
    this.redraw();
  }

  renderAlertPanels() {
    renderAlerts(this.events);
    renderBanner(this.events, this.videoFlowing);
  }

  renderLessons() {
    renderSessions(this.sessions, this.shown, (sessionId) => this.show(sessionId));
    renderRangePicker(this.sessions, this.shown);
    const running = this.runningSession();
    byId("lesson-toggle").textContent = running ? "End lesson" : "Start lesson";
    byId("lesson-toggle").dataset.action = running ? "end" : "start";
    byId("lesson-name").hidden = Boolean(running);
    byId("lesson-state").textContent = running
      ? `${running.name || "Lesson"} running since ${clockTime(running.started_at_ms)}`
      : "No lesson running";
  }

  async show(shown) {
    this.shown = shown;
    this.renderLessons();
    await this.guarded(() => this.refreshCharts({ withSummary: true }));
  }

  async toggleLesson() {
    const running = this.runningSession();
    await this.guarded(async () => {
      if (running) {
        await this.api.post(`${this.path}/sessions/${encodeURIComponent(running.session_id)}/end`);
      } else {
        const started = await this.api.post(`${this.path}/sessions`, { name: byId("lesson-name").value.trim() });
        byId("lesson-name").value = "";
        this.shown = started.session_id;
      }
      await this.loadSessions();
      await this.show(this.shown);
    });
  }
}

function renderRangePicker(sessions, shown) {
  const running = sessions.filter((s) => s.ended_at_ms === null || s.ended_at_ms === undefined);
  const past = sessions.filter((s) => !running.includes(s)).slice(0, PAST_LESSONS_LISTED);
  const option = (value, text) => element("option", { value, textContent: text, selected: value === shown });
  const groups = [
    ...running.map((s) => option(s.session_id, `Lesson now: ${s.name || "lesson"} (since ${clockTime(s.started_at_ms)})`)),
    option("recent15", "Last 15 minutes"),
    option("recent60", "Last hour"),
    option("recent360", "Last 6 hours"),
  ];
  if (past.length) {
    const label = (s) => `${s.name || "Lesson"} \u00b7 ${dayTime(s.started_at_ms)} (${duration(s.ended_at_ms - s.started_at_ms)})`;
    groups.push(element("optgroup", { label: "Past lessons" }, ...past.map((s) => option(s.session_id, label(s)))));
  }
  byId("range").replaceChildren(...groups);
}

/** The page: key, class picker, and the board of the picked class. */
class Dashboard {
  constructor() {
    this.api = null;
    this.board = null;
    this.classes = [];
  }

  async open() {
    byId("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.useKey(byId("key-input").value.trim());
    });
    byId("forget-key").addEventListener("click", () => this.askForKey(""));
    byId("class-picker").addEventListener("change", (event) => this.pick(event.target.value));
    byId("range").addEventListener("change", (event) => this.board?.show(event.target.value));
    byId("lesson-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.board?.toggleLesson();
    });
    new ResizeObserver(() => requestAnimationFrame(() => this.board?.redraw())).observe(byId("charts"));
    const viewer = document.querySelector('meta[name="classpulse-viewer"]');
    if (viewer) return this.embed(viewer);
    const stored = sessionStorage.getItem(KEY_STORAGE);
    if (stored) await this.useKey(stored);
    else this.askForKey("");
  }

  askForKey(message) {
    this.board?.stop();
    this.board = null;
    sessionStorage.removeItem(KEY_STORAGE);
    setConnection("stopped");
    byId("board").hidden = true;
    byId("class-bar").hidden = true;
    byId("key-panel").hidden = false;
    byId("key-error").textContent = message;
    byId("key-input").value = "";
    byId("key-input").focus();
  }

  /** A platform's embedded view: one class, its key never stored; the token (used once) leaves the address.
   *  Read-only, but for an LTI Instructor's launch, whose key may also run the class's lessons. */
  async embed(meta) {
    const session = JSON.parse(meta.content);
    meta.remove();
    history.replaceState(null, "", location.pathname);
    document.body.dataset.embedded = session.can_run_lessons ? "teacher" : "viewer";
    this.api = new Api(session.api_key);
    let record;
    try {
      record = await this.api.get(`/v1/classes/${encodeURIComponent(session.class_id)}`);
    } catch (error) {
      return this.embedEnded(error.message);
    }
    this.classes = [record];
    byId("class-bar").hidden = false;
    byId("class-picker").replaceChildren(element("option", { value: record.class_id, textContent: record.name || record.class_id }));
    byId("board").hidden = false;
    this.board = new ClassBoard(this.api, record, (message) => this.embedEnded(message));
    await this.board.start();
  }

  embedEnded(message) {
    this.board?.stop();
    this.board = null;
    this.api = null;
    setConnection("stopped");
    byId("board").hidden = true;
    showProblem(`This embedded view has ended (${message}): open it again from your learning platform.`);
  }

  async useKey(key) {
    const api = new Api(key);
    let page;
    try {
      page = await api.get("/v1/classes", { limit: 500 });
    } catch (error) {
      const why = error.status === 403 ? "This key cannot read classes: use a teacher or admin key."
        : error.status === 401 ? `That key was not accepted (${error.message}).` : `Could not reach ClassPulse: ${error.message}`;
      return this.askForKey(why);
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    this.api = api;
    this.classes = page.items;
    byId("key-panel").hidden = true;
    byId("class-bar").hidden = false;
    const picker = byId("class-picker");
    picker.replaceChildren(...this.classes.map((record) => element("option", {
      value: record.class_id,
      textContent: record.name ? `${record.name} (${record.class_id})` : record.class_id,
    })));
    byId("no-classes").hidden = this.classes.length > 0;
    const wanted = new URLSearchParams(location.hash.slice(1)).get("class");
    const first = this.classes.find((record) => record.class_id === wanted) ?? this.classes[0];
    if (first) await this.pick(first.class_id);
  }

  async pick(classId) {
    const record = this.classes.find((candidate) => candidate.class_id === classId);
    byId("class-picker").value = classId;
    history.replaceState(null, "", `#class=${encodeURIComponent(classId)}`);
    this.board?.stop();
    byId("board").hidden = false;
    this.board = new ClassBoard(this.api, record, (message) => this.askForKey(message));
    await this.board.start();
  }
}

new Dashboard().open();
