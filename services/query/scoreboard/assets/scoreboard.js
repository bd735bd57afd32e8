// The scoreboard's only script: the period selector submits on change, and the page redraws
// itself without a reload when the server's change marker moves (new rollups or alerts); when
// the server stops taking the read token (revoked, signed out) the browser goes to sign in.
"use strict";
(function () {
  const body = document.body;
  const every = Number(body.dataset.refreshS || "0") * 1000;
  const live = document.getElementById("live");
  let marker = body.dataset.marker || "";

  function signIn() {
    window.location.reload(); // the server answers the page with a redirect to its sign-in form
  }

  function wirePeriodForms() {
    for (const select of document.querySelectorAll("form.period select")) {
      select.addEventListener("change", () => select.form.submit());
    }
  }

  async function redraw() {
    const answer = await fetch(window.location.href, { cache: "no-store" });
    if (answer.redirected) {
      signIn(); // a page redirects only to the sign-in form
      return marker;
    }
    if (!answer.ok) throw new Error("page answered " + answer.status);
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
    const content = fresh.getElementById("content");
    if (!content) throw new Error("no content in the page");
    document.getElementById("content").replaceWith(content);
    const newMarker = fresh.body.dataset.marker || "";
    body.dataset.marker = newMarker;
    wirePeriodForms();
    document.getElementById("updated").textContent = "Updated " + new Date().toLocaleTimeString() + ".";
    live.classList.add("flash");
    setTimeout(() => live.classList.remove("flash"), 1500);
    body.dataset.redraws = String(Number(body.dataset.redraws || "0") + 1);
    return newMarker;
  }

  async function check() {
    try {
      const answer = await fetch(body.dataset.markerUrl, { cache: "no-store" });
      if (answer.status === 401) {
        signIn();
        return;
      }
      if (!answer.ok) throw new Error("marker answered " + answer.status);
      const now = (await answer.json()).marker;
      if (now !== marker) marker = await redraw();
      live.classList.remove("offline");
      live.textContent = "live";
    } catch (error) {
      live.classList.add("offline");
      live.textContent = "offline: retrying";
    } finally {
      setTimeout(check, every);
    }
  }

  wirePeriodForms();
  if (every > 0) setTimeout(check, every);
  else live.hidden = true;
})();
