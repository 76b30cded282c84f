// Interlock's own script: what the pages do once JavaScript runs. No inline script, no
// eval; everything it needs is in data- attributes.
//
// - <time data-local>: shown in the browser's time zone (UTC stays in the title);
// - <time data-countdown>: "in 4 min 10 s" / "2 min ago", kept up every second;
// - [data-max-rows]: a live list keeps at most that many rows (the newest, at the top);
// - a stream htmx opens again after an error resumes after the last event it received.
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        el.textContent = when.toLocaleString();
      }
    });
  }

  function span(seconds) {
    seconds = Math.floor(seconds);
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + (seconds % 60) + " s";
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h " + (minutes % 60) + " min";
    return Math.floor(hours / 24) + " days";
  }

  function countdowns() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var seconds = (at - now) / 1000;
      el.textContent = seconds >= 0 ? "in " + span(seconds) : span(-seconds) + " ago";
    });
  }

  function trim(root) {
    root.querySelectorAll("[data-max-rows]").forEach(function (list) {
      var max = parseInt(list.getAttribute("data-max-rows"), 10);
      while (max > 0 && list.children.length > max) {
        list.removeChild(list.lastElementChild);
      }
    });
  }

  // The last event id each stream URL delivered: a stream the SSE extension re-creates
  // (after the server refused a reconnection) starts there instead of at the page's cursor.
  var lastIds = {};

  function resumeUrl(url) {
    var absolute = new URL(url, window.location.href);
    var last = lastIds[absolute.href];
    if (last) absolute.searchParams.set("after", last);
    return absolute.href;
  }

  document.addEventListener("htmx:sseMessage", function (event) {
    var message = event.detail;
    if (message && message.lastEventId && message.target && message.target.url) {
      lastIds[message.target.url] = message.lastEventId;
    }
    trim(document);
  });

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    countdowns();
    window.setInterval(countdowns, 1000);
    if (window.htmx) {
      window.htmx.createEventSource = function (url) {
        return new EventSource(resumeUrl(url), { withCredentials: true });
      };
      window.htmx.onLoad(function (element) {
        localTimes(element);
        trim(element.parentElement || element);
      });
    }
  });
})();
