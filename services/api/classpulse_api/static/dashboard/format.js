// What the numbers are called and how they read: emotion names and colours, percentages, times of day.

/** Bottom-up order of the emotion chart: negative affect at the bottom, so its growth is the first thing seen. */
export const EMOTIONS = [
  { key: "angry", label: "Angry", color: "#d9534f" },
  { key: "disgust", label: "Disgust", color: "#8a6d3b" },
  { key: "fear", label: "Fear", color: "#9b6fd1" },
  { key: "sad", label: "Sad", color: "#4a88c7" },
  { key: "neutral", label: "Neutral", color: "#b4bcc7" },
  { key: "surprise", label: "Surprise", color: "#f0a04b" },
  { key: "happy", label: "Happy", color: "#5cb85c" },
];

export const EMOTION_BY_KEY = Object.fromEntries(EMOTIONS.map((emotion) => [emotion.key, emotion]));

export const INDEX_NAMES = {
  attention_risk: "Attention at risk",
  mood_index: "Mood",
  presence: "Presence",
  facing_screen: "Facing the screen",
};

/** Indices shown as percentages (shares of the class); the mood index is a signed score. */
const PERCENT_INDICES = new Set(["attention_risk", "presence", "facing_screen"]);

export const DASH = "–";

export function percent(share) {
  // A no-break space: the number never ends a line with its sign on the next.
  return share === null || share === undefined ? DASH : `${Math.round(share * 100)}\u00a0%`;
}

export function signed(value, digits = 2) {
  if (value === null || value === undefined) return DASH;
  const text = Math.abs(value).toFixed(digits);
  return value > 0.005 ? `+${text}` : value < -0.005 ? `\u2212${text}` : text;
}

export function indexValue(index, value) {
  return PERCENT_INDICES.has(index) ? percent(value) : signed(value);
}

/** The mood index in words, in the same bands as the colour of its tile. */
export function moodWord(mood) {
  if (mood === null || mood === undefined) return "no faces to read";
  if (mood >= 0.25) return "positive";
  if (mood > -0.1) return "calm";
  if (mood > -0.3) return "somewhat negative";
  return "negative";
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dayAndTime = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });

export function clockTime(ms) {
  return timeOfDay.format(new Date(ms));
}

export function dayTime(ms) {
  return dayAndTime.format(new Date(ms));
}

export function duration(ms) {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return "under a minute";
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
