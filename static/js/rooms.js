/*
 * rooms.js: the create-room form proposes the address (slug) from the name
 * until the address is edited by hand.
 */
(function () {
  "use strict";

  var name = document.getElementById("id_name");
  var slug = document.getElementById("id_slug");
  if (!name || !slug) { return; }
  var edited = slug.value !== "";

  function slugify(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 50);
  }

  name.addEventListener("input", function () {
    if (!edited) { slug.value = slugify(name.value); }
  });
  slug.addEventListener("input", function () { edited = slug.value !== ""; });
})();
