/* The text of an exclude file, byte for byte what pgrf.formats.exclude.write_exclude writes:
   a two-line '#' header naming the category and the date, then the ids sorted and unique, one a line. */
"use strict";

function excludeDate(now) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

function excludeText(category, ids, date) {
  const unique = Array.from(new Set(ids)).sort();
  return `# pgrf exclude list for category '${category}', written ${date}\n` +
    "# one model id, asset id or glob pattern a line; '#' starts a comment\n" +
    unique.map((id) => `${id}\n`).join("");
}

if (typeof module !== "undefined") {
  module.exports = { excludeDate, excludeText };
}
