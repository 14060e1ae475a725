// The student page's pace, kept in a worker: a hidden page's own timers are held to whole seconds (hidden for five
// minutes, Chrome wakes them once a minute), a worker's are not. A student who watches the lesson in another tab
// keeps the pace the class was set. The page posts the interval in milliseconds (0 stops); a tick is a message.
"use strict";

let timer = null;

onmessage = (event) => {
  clearInterval(timer);
  timer = event.data > 0 ? setInterval(() => postMessage(null), event.data) : null;
};
