// Draw every chart on the page: each <div data-chart="ID"> takes its Vega-Lite spec from the JSON in
// <script type="application/json" id="ID">. The numbers are also in a table beside each chart, so a
// page without JavaScript (or with the charts failing) still says everything.
//
// A module, loaded after the vendored vega scripts (deferred scripts and modules run in the order
// of the page). Under the site's Content-Security-Policy no string may be evaluated as code, so
// Vega's expressions are interpreted (vega-interpreter, `ast: true`) rather than compiled with
// Function(), and vega-embed's and the tooltip's styles come from site.css rather than from
// <style> elements they would otherwise add.
import { expressionInterpreter } from "./vendor/vega-interpreter.js";

(function () {
  // Month and day names on time axes in the page's language (d3-time-format's zh-CN locale).
  var zh = {
    dateTime: "%x %A %X", date: "%Y年%-m月%-d日", time: "%H:%M:%S", periods: ["上午", "下午"],
    days: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
    shortDays: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
    months: ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"],
    shortMonths: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"]
  };
  function draw() {
    if (typeof vegaEmbed !== "function") return;
    var options = {
      actions: false, renderer: "svg", ast: true, expr: expressionInterpreter,
      defaultStyle: false, tooltip: { disableDefaultStyle: true }
    };
    if ((document.documentElement.lang || "").indexOf("zh") === 0) options.timeFormatLocale = zh;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      vegaEmbed(el, spec, options)
        .then(function () { el.setAttribute("data-drawn", "true"); })
        .catch(function (err) { el.setAttribute("data-error", String(err)); });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
