/* pgrf review: filters, sorting, search, incremental cards and the exclude list. Plain DOM, no framework;
   every text from the data goes in through textContent. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("pgrf-data").textContent);
  const BATCH = 120;
  const STATUS_ORDER = ["rendered", "sparse", "skipped_small", "failed", "timeout", "excluded", "unreadable", "packed"];
  const $ = (id) => document.getElementById(id);
  const list = $("cards");
  const more = $("more");
  const storeKey = `pgrf-review:${data.kind}:${data.source}`;
  const cards = data.cards.map((card) => Object.assign({
    pick: `${card.category}\u0000${card.id}`,
    text: [card.id, card.asset, card.name, card["class"], card.key, card.category].filter(Boolean).join(" ").toLowerCase(),
  }, card));
  const selected = new Map();
  let view = [];
  let shownCount = 0;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function count(values) {
    const counts = new Map();
    values.forEach((value) => counts.set(value, (counts.get(value) || 0) + 1));
    return counts;
  }

  /* the exclude list: starts with the models excluded now; kept in this browser across reloads */
  function resetSelection() {
    selected.clear();
    cards.filter((card) => card.selected).forEach((card) => selected.set(card.pick, card));
  }

  function restoreSelection() {
    resetSelection();
    try {
      const saved = JSON.parse(window.localStorage.getItem(storeKey));
      if (!Array.isArray(saved)) return;
      const byPick = new Map(cards.map((card) => [card.pick, card]));
      selected.clear();
      saved.forEach((pick) => { if (byPick.has(pick)) selected.set(pick, byPick.get(pick)); });
    } catch (error) { /* storage unavailable (some file:// settings): the list lives as long as the page */ }
  }

  function saveSelection() {
    try { window.localStorage.setItem(storeKey, JSON.stringify(Array.from(selected.keys()))); } catch (error) { /* see above */ }
  }

  function setPicked(pick, on) {
    const card = cards.find((c) => c.pick === pick);
    if (on) selected.set(pick, card); else selected.delete(pick);
    list.querySelectorAll("li.card").forEach((item) => {
      if (item.dataset.pick !== pick) return;
      item.classList.toggle("selected", on);
      item.querySelector("input.exclude").checked = on;
    });
    renderExports();
    saveSelection();
  }

  function download(name, text) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  function renderExports() {
    const box = $("exports");
    box.replaceChildren();
    const kept = data.kept || {};
    const byCategory = new Map(Object.keys(kept).map((category) => [category, []]));
    selected.forEach((card) => {
      if (!byCategory.has(card.category)) byCategory.set(card.category, []);
      byCategory.get(card.category).push(card.id);
    });
    $("selection-title").textContent = `Exclude list (${new Set(Array.from(selected.values(), (c) => c.id)).size} ticked)`;
    if (!byCategory.size) {
      box.append(el("p", "muted", "No model is excluded."));
      return;
    }
    const date = excludeDate(new Date());
    Array.from(byCategory.keys()).sort().forEach((category, i) => {
      const ticked = new Set(byCategory.get(category)).size;
      const text = excludeText(category, byCategory.get(category).concat(kept[category] || []), date);
      const file = `exclude-${category}.txt`;
      const area = el("textarea", "export");
      area.id = `export-${i}`;
      area.readOnly = true;
      area.value = text;
      area.dataset.category = category;
      area.setAttribute("aria-label", `exclude file for category ${category}`);
      const heading = el("h3", null, `${category}: ${ticked} ticked`);
      box.append(heading);
      if (kept[category]) {
        box.append(el("p", "muted", `+ ${kept[category].length} entries of its current exclude file that name no card here (kept)`));
      }
      const button = el("button", "download", `Download ${file}`);
      button.type = "button";
      button.addEventListener("click", () => download(file, text));
      box.append(area, button);
    });
  }

  function row(dl, term, value) {
    if (value === undefined || value === null || value === "") return null;
    const dd = el("dd");
    if (value instanceof Node) dd.append(value); else dd.textContent = String(value);
    dl.append(el("dt", null, term), dd);
    return dd;
  }

  function thumbnail(card) {
    const width = data.size * data.tiles;
    if (!card.thumb) {
      const none = el("div", "strip none", card.status === "rendered" || card.status === "sparse" || card.status === "packed"
        ? "no thumbnail" : "not rendered");
      none.style.aspectRatio = `${width} / ${data.size}`;
      return none;
    }
    const img = el("img", "strip");
    img.loading = "lazy";
    img.decoding = "async";
    img.width = width;
    img.height = data.size;
    img.alt = data.kind === "shards" ? `sample ${card.key} and its mirrored twin` : `${data.tiles} views of ${card.id} round the model`;
    img.style.aspectRatio = `${width} / ${data.size}`;  /* a model with fewer views than the strip has slots keeps the card's shape */
    img.src = card.thumb.split("/").map(encodeURIComponent).join("/");  /* a folder name may hold '#', '?' or spaces */
    return img;
  }

  function cardElement(card) {
    const item = el("li", "card");
    item.dataset.pick = card.pick;
    item.append(thumbnail(card));
    if (data.kind === "shards") {
      const labels = el("div", "pair-labels");
      labels.append(el("span", null, card.key), el("span", null, card.twin || "no mirrored twin"));
      item.append(labels);
    }
    item.append(el("h2", null, card.id));
    const dl = el("dl");
    row(dl, "asset", card.name && card.name !== card.asset ? `${card.name} (${card.asset})` : card.asset);
    row(dl, "class", card["class"] || "—");
    if (categories.size > 1) row(dl, "category", card.category);
    const badge = el("span", "status", card.status);
    badge.style.background = `var(--${card.status}, var(--muted))`;
    row(dl, "status", badge);
    if (card.mean_alpha !== undefined) row(dl, "mean alpha", card.mean_alpha.toFixed(4));
    if (card.dims_product !== undefined) row(dl, "dims product", card.dims_product.toPrecision(3));
    if (card.yaw !== undefined) row(dl, "yaw / pitch", `${card.yaw.toFixed(1)}° / ${card.pitch.toFixed(1)}° (twin ${(-card.yaw).toFixed(1)}°)`);
    item.append(dl);
    if (card.why) item.append(el("p", "why", card.why));
    const label = el("label", "toggle");
    const box = el("input", "exclude");
    box.type = "checkbox";
    box.checked = selected.has(card.pick);
    box.setAttribute("aria-label", `exclude ${card.id}`);
    label.append(box, " exclude");
    item.append(label);
    item.classList.toggle("selected", box.checked);
    return item;
  }

  function renderMore() {
    const batch = view.slice(shownCount, shownCount + BATCH);
    const fragment = document.createDocumentFragment();
    batch.forEach((card) => fragment.append(cardElement(card)));
    list.append(fragment);
    shownCount += batch.length;
    more.hidden = shownCount >= view.length;
  }

  const statusBoxes = new Map();
  const categories = count(cards.map((card) => card.category));

  function matches(card, words, statusOn, klass, category, onlySelected) {
    if (!statusOn.has(card.status)) return false;
    if (klass !== "\u0000all" && (card["class"] || "") !== klass) return false;
    if (category !== "\u0000all" && card.category !== category) return false;
    if (onlySelected && !selected.has(card.pick)) return false;
    return words.every((word) => card.text.includes(word));
  }

  function apply() {
    const words = $("search").value.toLowerCase().split(/\s+/).filter(Boolean);
    const statusOn = new Set(Array.from(statusBoxes).filter(([, box]) => box.checked).map(([status]) => status));
    const klass = $("class-filter").value;
    const category = $("category-filter").value;
    const onlySelected = $("only-selected").checked;
    view = cards.filter((card) => matches(card, words, statusOn, klass, category, onlySelected));
    const sort = $("sort").value;
    const byName = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : (a.key || "") < (b.key || "") ? -1 : 1);
    const alpha = (card) => (card.mean_alpha === undefined ? -1 : card.mean_alpha);
    if (sort === "name") view.sort(byName);
    else view.sort((a, b) => (sort === "alpha-asc" ? alpha(a) - alpha(b) : alpha(b) - alpha(a)) || byName(a, b));
    list.replaceChildren();
    shownCount = 0;
    renderMore();
    $("shown").textContent = `Showing ${view.length} of ${cards.length} cards`;
    observe();
  }

  let observer = null;
  function observe() {
    if (!observer) return;
    observer.unobserve(more);  /* observing again reports the current state, so a sentinel still in sight loads the next batch */
    observer.observe(more);
  }

  function buildControls() {
    $("source").textContent = `${data.kind}: ${data.source} · written ${data.created} · ${cards.length} cards`;
    const summary = $("summary");
    data.summary.forEach(([term, value]) => summary.append(el("dt", null, term), el("dd", null, value)));
    $("summary-box").open = data.kind === "shards";
    const statuses = count(cards.map((card) => card.status));
    const ordered = Array.from(statuses.keys()).sort((a, b) => {
      const rank = (s) => (STATUS_ORDER.includes(s) ? STATUS_ORDER.indexOf(s) : STATUS_ORDER.length);
      return rank(a) - rank(b) || (a < b ? -1 : 1);
    });
    const fieldset = $("status-filter");
    ordered.forEach((status) => {
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.checked = true;
      box.value = status;
      box.addEventListener("change", apply);
      statusBoxes.set(status, box);
      label.append(box, ` ${status} (${statuses.get(status)})`);
      fieldset.append(label);
    });
    const classes = count(cards.map((card) => card["class"] || ""));
    const classSelect = $("class-filter");
    classSelect.append(new Option(`all classes (${classes.size})`, "\u0000all"));
    Array.from(classes.keys()).sort().forEach((name) => classSelect.append(new Option(`${name || "(none)"} (${classes.get(name)})`, name)));
    const categorySelect = $("category-filter");
    categorySelect.append(new Option(`all categories (${categories.size})`, "\u0000all"));
    Array.from(categories.keys()).sort().forEach((name) => categorySelect.append(new Option(`${name} (${categories.get(name)})`, name)));
    $("category-label").hidden = categories.size < 2;
    let timer = null;
    $("search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 150); });
    ["class-filter", "category-filter", "sort", "only-selected"].forEach((id) => $(id).addEventListener("change", apply));
    list.addEventListener("change", (event) => {
      if (!event.target.matches("input.exclude")) return;
      setPicked(event.target.closest("li.card").dataset.pick, event.target.checked);
    });
    $("more-button").addEventListener("click", renderMore);
    $("clear").addEventListener("click", () => {
      selected.clear();
      saveSelection();
      apply();
      renderExports();
    });
    if ("IntersectionObserver" in window) {
      observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting) && shownCount < view.length) {
          renderMore();
          observe();
        }
      }, { rootMargin: "1200px 0px" });
    }
  }

  function placeAside() {  /* the exclude list stays in sight just below the sticky bar of controls */
    document.documentElement.style.setProperty("--below-header", `${document.querySelector(".bar").offsetHeight + 12}px`);
  }

  restoreSelection();
  buildControls();
  placeAside();
  window.addEventListener("resize", placeAside);
  renderExports();
  apply();
}());
