// The lesson's charts: what /timeseries returned over the shown range, with lessons shaded and alerts marked.

import { drawChart } from "./charts.js";
import { byId, element } from "./dom.js";
import { EMOTIONS, INDEX_NAMES, clockTime, indexValue, percent, signed } from "./format.js";

const SHARE_TICKS = [0, 0.25, 0.5, 0.75, 1];
const shareLabel = (share) => `${Math.round(share * 100)}%`;

function sessionBands(sessions, now) {
  return sessions.map((session) => ({
    start: session.started_at_ms,
    end: session.ended_at_ms ?? now,
    label: `${session.name || "Lesson"}: ${clockTime(session.started_at_ms)}${session.ended_at_ms ? `\u2013${clockTime(session.ended_at_ms)}` : " (running)"}`,
  }));
}

function alertMarkers(events) {
  return events.map((event) => ({
    t: event.t,
    kind: event.kind,
    label: `${clockTime(event.t)} ${INDEX_NAMES[event.index] ?? event.index} ${event.kind === "started" ? "alert" : "cleared"}: ${indexValue(event.index, event.value)}`,
  }));
}

function renderLegend(points) {
  const latest = [...points].reverse().find((point) => point.emotions);
  byId("legend-emotions").replaceChildren(
    ...[...EMOTIONS].reverse().map((emotion) => {
      const swatch = element("span", { className: "swatch" });
      swatch.style.setProperty("background-color", emotion.color);
      return element("li", { dataset: { emotion: emotion.key } }, swatch, emotion.label, element("b", {}, latest ? percent(latest.emotions[emotion.key]) : ""));
    }),
  );
}

/** Without a class size there is no presence: the chart shows students on camera instead, on a scale that fits them. */
function presenceOrFaces(record, at) {
  if (record.expected_students > 0) {
    return { values: at((point) => point.presence), yMax: 1, yTicks: SHARE_TICKS, yFormat: shareLabel, label: "Presence" };
  }
  const values = at((point) => point.on_camera);
  const top = Math.max(1, Math.ceil(Math.max(0, ...values.map(([, v]) => v ?? 0))));
  const step = Math.max(1, Math.ceil(top / 4));
  const yTicks = Array.from({ length: Math.floor(top / step) + 1 }, (_, i) => i * step);
  return { values, yMax: top, yTicks, yFormat: String, label: "Students on camera" };
}

/**
 * Draws the four charts. view: {series (a /timeseries answer), domain {start, end}, record, sessions, events,
 * riskThreshold}. Emotion charts are drawn only for classes with emotions on.
 */
export function drawLessonCharts({ series, domain, record, sessions, events, riskThreshold }) {
  const points = series.points;
  const at = (pick) => points.map((point) => [point.t, pick(point)]);
  const common = {
    start: domain.start, end: domain.end, bucketMs: series.bucket_ms,
    bands: sessionBands(sessions, domain.end), markers: alertMarkers(events),
  };
  const emotionsOn = record.emotion_enabled;
  if (emotionsOn) {
    drawChart(byId("chart-emotions"), {
      ...common, height: 170, yMin: 0, yMax: 1, yTicks: SHARE_TICKS, yFormat: shareLabel,
      layers: [{
        type: "stack",
        series: EMOTIONS.map((emotion) => ({ ...emotion, values: at((point) => point.emotions?.[emotion.key] ?? null) })),
      }],
    });
    renderLegend(points);
    drawChart(byId("chart-mood"), {
      ...common, height: 120, yMin: -1, yMax: 1, yTicks: [-1, -0.5, 0, 0.5, 1], yFormat: (v) => signed(v, 1),
      layers: [{ type: "signed", key: "mood_index", values: at((point) => point.mood_index) }],
    });
  }
  const presence = presenceOrFaces(record, at);
  // Attention at risk is a share of the class: it shares the axis of presence, not that of a face count.
  const withRisk = emotionsOn && record.expected_students > 0;
  byId("presence-title").textContent = withRisk ? `${presence.label} and attention at risk` : presence.label;
  byId("legend-risk").hidden = !withRisk;
  drawChart(byId("chart-presence"), {
    ...common, height: 140, yMin: 0, yMax: presence.yMax, yTicks: presence.yTicks, yFormat: presence.yFormat,
    layers: [
      { type: "line", key: "presence", className: "presence", values: presence.values },
      ...(withRisk ? [{ type: "line", key: "attention_risk", className: "risk", values: at((point) => point.attention_risk) }] : []),
    ],
    threshold: withRisk ? { value: riskThreshold, label: `alert above ${shareLabel(riskThreshold)}` } : null,
  });
  drawChart(byId("chart-facing"), {
    ...common, height: 100, yMin: 0, yMax: 1, yTicks: SHARE_TICKS, yFormat: shareLabel,
    layers: [{ type: "line", key: "facing_screen", className: "facing", values: at((point) => point.facing_screen) }],
  });
}
