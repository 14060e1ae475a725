// The parts of the page that are not charts: the "right now" tiles, alerts, lessons and the lesson's arc.

import { byId, element } from "./dom.js";
import {
  DASH, EMOTION_BY_KEY, INDEX_NAMES, clockTime, dayTime, duration, indexValue, moodWord, percent, signed,
} from "./format.js";

/** The aggregator's default attention-at-risk threshold, used until an alert tells the configured one. */
export const DEFAULT_RISK_THRESHOLD = 0.6;

function setTile(id, { value, detail, level = "none", raw = null }) {
  const tile = byId(id);
  tile.querySelector(".value").textContent = value;
  tile.querySelector(".detail").textContent = detail;
  tile.dataset.level = level;
  tile.dataset.value = raw === null || raw === undefined ? "" : String(raw);
}

/** Students on camera over the live window. A camera counts until its presence window runs out after its last
 * frame, so "x of N" falls as cameras go off; a window in which no camera was live at all says so instead. */
function presenceTile(live, expected) {
  if (!live || (live.frames === 0 && !live.on_camera)) {
    return { value: DASH, detail: `no video in the last ${live?.window_s ?? 10} s` };
  }
  const onCamera = live.on_camera ?? 0;
  if (live.presence === null) {
    return { value: onCamera.toFixed(1), detail: "students on camera (class size not set)", raw: onCamera };
  }
  const level = live.presence >= 0.8 ? "good" : live.presence >= 0.5 ? "watch" : "high";
  return { value: percent(live.presence), detail: `${Math.round(onCamera)} of ${expected} on camera`, level, raw: live.presence };
}

/** The share of the faces with a head pose that faced their camera; faces without one (Haar) are not in it. */
function facingTile(live) {
  const share = live?.facing_screen ?? null;
  if (share === null) return { value: DASH, detail: "no face with a head pose" };
  const level = share >= 0.7 ? "good" : share >= 0.4 ? "watch" : "high";
  return { value: percent(share), detail: "of the faces turned to their screen", level, raw: share };
}

function moodTile(live) {
  const mood = live?.mood_index ?? null;
  if (mood === null) return { value: DASH, detail: moodWord(null) };
  const level = mood > -0.1 ? "good" : mood > -0.3 ? "watch" : "high";
  return { value: signed(mood), detail: moodWord(mood), level, raw: mood };
}

function riskTile(live, threshold) {
  const risk = live?.attention_risk ?? null;
  if (risk === null) return { value: DASH, detail: "no faces to read" };
  const level = risk < 0.35 ? "good" : risk < threshold ? "watch" : "high";
  return { value: percent(risk), detail: "away or in negative affect", level, raw: risk };
}

/** How much of what was seen the shares were read from, said only where it is not all of it (faces of a class
 * switched to presence-only a while, or seen but not classified). */
function readFrom(figures) {
  const share = figures?.classified_share ?? null;
  return share === null || share >= 0.995 ? "" : `, read from ${percent(share)} of the faces seen`;
}

function dominantTile(live) {
  const name = live?.dominant_emotion;
  if (!name || !live.emotions) return { value: DASH, detail: "no faces to read" };
  return { value: EMOTION_BY_KEY[name].label, detail: `${percent(live.emotions[name])} of the faces${readFrom(live)}`, raw: name };
}

/** The latest window of the class (the stream's `live` event) in the four tiles. */
export function renderTiles(live, record, riskThreshold) {
  setTile("tile-presence", presenceTile(live, record.expected_students));
  setTile("tile-facing", facingTile(live));
  setTile("tile-mood", moodTile(live));
  setTile("tile-risk", riskTile(live, riskThreshold));
  const dominant = dominantTile(live);
  setTile("tile-dominant", dominant);
  const swatch = byId("tile-dominant").querySelector(".swatch");
  swatch.hidden = !EMOTION_BY_KEY[dominant.raw];
  if (!swatch.hidden) swatch.style.setProperty("background-color", EMOTION_BY_KEY[dominant.raw].color);
}

function direction(event) {
  return event.value !== null && event.value < event.threshold ? "below" : "above";
}

/** For each index, its newest event if that one says the alert started and has not ended since. */
function activeAlerts(events) {
  const newest = new Map();
  for (const event of events) if (!newest.has(event.index)) newest.set(event.index, event);
  return [...newest.values()].filter((event) => event.kind === "started");
}

/** What holds now: alerts that started and have not ended. An alert ends only on new video, so while none comes
 * the state of the class is unknown and the banner stays hidden; the alert list keeps the history. */
export function renderBanner(events, videoFlowing) {
  const active = videoFlowing ? activeAlerts(events) : [];
  const banner = byId("alert-banner");
  banner.hidden = active.length === 0;
  banner.replaceChildren(
    ...active.map((event) => element(
      "p", { dataset: { index: event.index } },
      element("strong", {}, `${INDEX_NAMES[event.index] ?? event.index} ${direction(event)} ${indexValue(event.index, event.threshold)}`),
      ` since ${clockTime(event.t)}`,
    )),
  );
}

export function renderAlerts(events) {
  const items = events.map((event) => {
    const name = INDEX_NAMES[event.index] ?? event.index;
    const threshold = indexValue(event.index, event.threshold);
    const what = event.kind === "started" ? `${name} ${direction(event)} ${threshold}`
      : event.value === null ? `${name} alert cleared` : `${name} back ${direction(event)} ${threshold}`;
    return element(
      "li", { className: `alert ${event.kind}`, dataset: { index: event.index, kind: event.kind, t: String(event.t) } },
      element("time", { dateTime: new Date(event.t).toISOString() }, clockTime(event.t)),
      element("span", { className: "what" }, what),
      element("span", { className: "at" }, indexValue(event.index, event.value)),
    );
  });
  byId("alerts").replaceChildren(...items);
  byId("alerts-empty").hidden = items.length > 0;
}

export function renderSessions(sessions, shownId, onShow) {
  const items = sessions.map((session) => {
    const running = session.ended_at_ms === null || session.ended_at_ms === undefined;
    const length = (running ? Date.now() : session.ended_at_ms) - session.started_at_ms;
    const show = element("button", { type: "button", className: "link", textContent: session.session_id === shownId ? "shown" : "show" });
    show.disabled = session.session_id === shownId;
    show.addEventListener("click", () => onShow(session.session_id));
    return element(
      "li", { className: running ? "session running" : "session", dataset: { sessionId: session.session_id } },
      element("span", { className: "name" }, session.name || "Lesson"),
      element("span", { className: "when" }, `${dayTime(session.started_at_ms)} \u00b7 ${running ? "running, " : ""}${duration(length)}`),
      show,
    );
  });
  byId("sessions").replaceChildren(...items);
  byId("sessions-empty").hidden = items.length > 0;
}

/** Peaks a few seconds apart are one moment to look back at: keep the strongest of each. */
function distinctMoments(peaks, apartMs = 15_000) {
  const kept = [];
  for (const peak of peaks) if (kept.every((other) => Math.abs(other.t - peak.t) >= apartMs)) kept.push(peak);
  return kept;
}

/** The range cut into phases, each coloured by the emotion the class showed most, and its hardest moments. */
export function renderArc(summary) {
  const phases = (summary?.phases ?? []).filter((phase) => phase.faces > 0);
  byId("arc").replaceChildren(
    ...phases.map((phase) => {
      const emotion = EMOTION_BY_KEY[phase.dominant_emotion];
      const block = element(
        "li", {
          className: "phase",
          title: `${clockTime(Date.parse(phase.start))}: mood ${signed(phase.mood_index)}${readFrom(phase)}`,
          dataset: { classifiedShare: String(phase.classified_share ?? "") },
        },
        element("span", { className: "phase-time" }, clockTime(Date.parse(phase.start))),
        element("span", { className: "phase-emotion" }, emotion?.label ?? DASH),
        element("span", { className: "phase-read" }, `${percent(phase.classified_share)} read`),
      );
      if (emotion) block.style.setProperty("--phase-color", emotion.color);
      return block;
    }),
  );
  const peaks = distinctMoments((summary?.peaks ?? []).filter((peak) => peak.negative_share > 0));
  byId("peaks").replaceChildren(
    ...peaks.map((peak) => element(
      "li", { dataset: { t: String(peak.t) } },
      element("time", { dateTime: peak.time }, clockTime(peak.t)),
      ` ${percent(peak.negative_share)} negative affect`,
    )),
  );
  byId("arc-section").hidden = phases.length === 0;
}
