// The student page: nothing touches the camera until the student agrees; then one snapshot every interval, posted
// with the student token; Pause stops the camera itself (its light goes off), not just the uploads.
"use strict";

(() => {
  const page = document.body;
  const classId = page.dataset.classId;
  const intervalMs = Number(page.dataset.intervalMs);
  const maxSide = Number(page.dataset.maxSide);
  const $ = (id) => document.getElementById(id);

  // The token is in the fragment (never sent to a server); take it, then clear it from the address bar.
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  const sessionId = fragment.get("session");
  history.replaceState(null, "", location.pathname + location.search);
  // One id per page load: frames of this page form one source; the server prefixes it with the token's id.
  const sourceId = "page-" + Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");

  // A photo whose answer did not come (no connection, the answer lost) or came busy is sent again, with the same
  // Idempotency-Key: ClassPulse answers a retry of a photo it already has as the first time and counts it once.
  const RETRY_DELAYS_MS = [1000, 2000, 4000];
  const RETRIED_STATUSES = new Set([408, 409, 500, 502, 503, 504]);

  let stream = null;
  let turningOn = false;
  let capturing = false;
  const pace = new Worker("/student-assets/pace.js");
  pace.onmessage = snapshot;
  let sending = false;
  let sent = 0;
  let photos = 0;
  const canvas = document.createElement("canvas");

  function setState(state, indicatorText) {
    page.dataset.state = state;
    const indicator = $("indicator");
    indicator.textContent = indicatorText || "";
    indicator.className = state === "capturing" ? "on" : "paused";
  }

  function say(text) {
    $("message").textContent = text;
  }

  async function startCapture() {
    // A second click while the camera turns on would open a second stream, one that Pause never stops.
    if (turningOn || stream) {
      return;
    }
    turningOn = true;
    say("");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
    } catch (error) {
      page.dataset.state = "error";
      say("Your camera could not be turned on (" + error.name + "). Nothing was captured.");
      return;
    } finally {
      turningOn = false;
    }
    $("consent").hidden = true;
    $("capture").hidden = false;
    $("pause").hidden = false;
    $("resume").hidden = true;
    // Unplugged, switched off or taken by the system: the preview would go on showing its last picture, and
    // photos of it would count a student who may have left.
    stream.getVideoTracks().forEach((track) => track.addEventListener("ended", cameraLost));
    $("preview").srcObject = stream;
    showPreview();
    setState("capturing", "Capture is ON: one photo " + page.dataset.intervalWords);
    capturing = true;
    snapshot();
    pace.postMessage(intervalMs);
  }

  // The preview is for the student: photos do not wait for it. A browser may refuse to start it (an autoplay policy, a
  // power saver) or stop it (Pause pressed meanwhile); a button starts it by hand, which no autoplay policy refuses.
  function showPreview() {
    const preview = $("preview");
    const shown = preview.srcObject;
    preview.play().then(
      () => {
        $("preview-stopped").hidden = true;
      },
      (error) => {
        if (!stream || preview.srcObject !== shown) {
          return; // paused (or paused and resumed) while it started: this camera is no longer shown
        }
        $("preview-error").textContent = error.name;
        $("preview-stopped").hidden = false;
      },
    );
  }

  function pauseCapture() {
    pace.postMessage(0);
    capturing = false;
    if (stream) {
      stream.getTracks().forEach((track) => track.stop());
      stream = null;
    }
    $("preview").srcObject = null;
    $("preview-stopped").hidden = true;
    $("pause").hidden = true;
    $("resume").hidden = false;
    setState("paused", "Capture is PAUSED: no photo is being taken");
  }

  function cameraLost() {
    pauseCapture();
    say("Your camera stopped (unplugged, switched off or used by another program): no photo is being taken. Press Resume to turn it on again.");
  }

  // The camera's picture now: the preview's while it plays; else, where the browser can, the camera's own next frame
  // (ImageCapture), so that a preview the browser did not start stops no photo. A paused preview holds an old
  // picture: it is never sent.
  function grabFrame(track) {
    const preview = $("preview");
    if (!preview.paused && preview.videoWidth) {
      return createImageBitmap(preview);
    }
    if (typeof ImageCapture === "function") {
      return new ImageCapture(track).grabFrame();
    }
    return Promise.reject(new Error("the preview does not play"));
  }

  async function snapshot() {
    if (!stream || sending) {
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (track.muted) {
      return; // no new picture comes for now (the system holds the camera): the last one is not sent
    }
    // Held from the grab to the answer: a camera's next frame may take longer than the interval, and the ticks
    // meanwhile would each wait for it, then post the same picture at once.
    sending = true;
    try {
      await takeAndSend(track);
    } finally {
      sending = false;
    }
  }

  async function takeAndSend(track) {
    const frame = await grabFrame(track).catch(() => null);
    if (!frame) {
      return; // no picture this time (the camera is starting, or stopped meanwhile): the next one is taken as usual
    }
    const scale = Math.min(1, maxSide / Math.max(frame.width, frame.height));
    canvas.width = Math.round(frame.width * scale);
    canvas.height = Math.round(frame.height * scale);
    canvas.getContext("2d").drawImage(frame, 0, 0, canvas.width, canvas.height);
    frame.close();
    const takenAt = performance.now();
    const photo = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    if (!capturing || !photo) {
      return; // paused while the photo was being encoded: it is not sent
    }
    const photoKey = sourceId + "-" + photos;
    photos += 1;
    let response = null;
    for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length && capturing; attempt += 1) {
      if (attempt > 0) {
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt - 1]));
      }
      // No answer (null): the photo may have arrived or not; sent again with its key, it is counted once either way.
      response = await post(photo, takenAt, photoKey).catch(() => null);
      if (response && !RETRIED_STATUSES.has(response.status)) {
        break;
      }
    }
    if (response) {
      answered(response);
    } else {
      say("No connection to ClassPulse: the next photo will be tried as usual.");
    }
  }

  function post(photo, takenAt, photoKey) {
    const headers = {
      Authorization: "Bearer " + token,
      "Content-Type": "image/jpeg",
      "X-Source-Id": sourceId,
      "Idempotency-Key": photoKey,
      // The age by this computer's clock, not a time stamp: a wrong clock on the student's side does not matter.
      "X-Capture-Age-Ms": String(Math.round(performance.now() - takenAt)),
    };
    if (sessionId) {
      headers["X-Session-Id"] = sessionId;
    }
    return fetch("/v1/classes/" + encodeURIComponent(classId) + "/frames", { method: "POST", headers, body: photo });
  }

  function answered(response) {
    if (response.ok) {
      sent += 1;
      page.dataset.sent = String(sent);
      $("sent").textContent = String(sent);
      say("");
    } else if (response.status === 401 || response.status === 403) {
      pauseCapture();
      say("This link has expired or is not for this class: ask your teacher for a new one.");
    } else if (response.status === 429) {
      say("The class is busy: this photo was skipped, the next one will be sent as usual.");
    } else {
      say("A photo could not be sent (error " + response.status + "); the next one will be tried as usual.");
    }
  }

  if (!token) {
    page.dataset.state = "error";
    $("agree").disabled = true;
    say("This link is incomplete (it has no token): ask your teacher for the class link.");
  }
  $("agree").addEventListener("click", startCapture);
  $("resume").addEventListener("click", startCapture);
  $("pause").addEventListener("click", pauseCapture);
  $("show-preview").addEventListener("click", showPreview);
  $("decline").addEventListener("click", () => {
    $("consent").hidden = true;
    $("declined").hidden = false;
    page.dataset.state = "declined";
  });
})();
