/*
 * message_actions.js: what a stored message shows and offers beyond its text (protocol 1.1),
 * used by chat.js (loaded before it).
 *
 *   window.MessageActions(options) -> { render, renderQuote, edit, cancelEdit, settle }
 *
 * options: me ({id, username}), canModerate (a room's creator may delete anyone's message),
 * readOnly, renderBody(el, text), send(frame) -> bool (false while offline), showError(text),
 * reply(message) (the composer quotes it), composer (the textarea focus returns to),
 * list (#message-list: Up and Down move between its messages), jumpTo(id) (scroll to and
 * highlight a message).
 *
 * Stable hooks for browser tests (do not rename):
 *   .message .reply-quote          link to #message-<id> of the message answered ("message deleted" once it is)
 *   .message .edited               "(edited)" after the body, the edit time in its title
 *   .message.deleted .tombstone    "message deleted", in the message's place
 *   .message .reactions .reaction[data-emoji]   one emoji's button: .count, aria-pressed, .mine when yours
 *   .message .message-actions      role="toolbar": .react[data-emoji] quick reactions, .reply, .edit, .delete;
 *                                  one tab stop while its message has the focus, arrows inside
 *   .message.editing .edit-box     the editor: Enter saves, Shift+Enter newline, Escape cancels
 *   #delete-dialog                 the confirmation (#delete-confirm, #delete-cancel)
 * User text is only ever inserted with textContent.
 */
(function () {
  "use strict";

  var QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

  function button(className, text, label) {
    var el = document.createElement("button");
    el.type = "button";
    el.className = className;
    el.textContent = text;
    if (label) { el.setAttribute("aria-label", label); }
    return el;
  }

  function MessageActions(options) {
    var me = options.me;
    var editingLi = null;
    var dialog = document.getElementById("delete-dialog");
    var dialogExcerpt = document.getElementById("delete-dialog-excerpt");
    var dialogReturn = null;
    var dialogTarget = null;

    /* The quote of the message answered, as a link to it (pending bubbles quote what was typed against). */
    function renderQuote(li, replyTo) {
      var quote = li.querySelector(".reply-quote");
      if (!replyTo) { if (quote) { quote.remove(); } return; }
      if (!quote) {
        quote = document.createElement("a");
        quote.className = "reply-quote";
        quote.addEventListener("click", function (event) {
          event.preventDefault();
          options.jumpTo(Number(quote.dataset.replyTo));
        });
        li.querySelector(".body").before(quote);
      }
      quote.href = "#message-" + replyTo.id;
      quote.dataset.replyTo = String(replyTo.id);
      quote.textContent = "";
      var who = document.createElement("span");
      who.className = "reply-sender";
      who.textContent = replyTo.sender.username;
      var excerpt = document.createElement("span");
      excerpt.className = "reply-excerpt";
      excerpt.textContent = replyTo.deleted ? "message deleted" : replyTo.excerpt;
      quote.classList.toggle("reply-deleted", Boolean(replyTo.deleted));
      quote.title = "Show the message this answers";
      quote.appendChild(who);
      quote.appendChild(excerpt);
    }

    function renderText(li, message) {
      var body = li.querySelector(".body");
      body.classList.toggle("tombstone", message.deleted);
      if (message.deleted) {
        body.textContent = "message deleted";
        return;
      }
      options.renderBody(body, message.body);
      if (message.edited_at) {
        var mark = document.createElement("span");
        mark.className = "edited";
        mark.textContent = " (edited)";
        mark.title = "Edited " + new Date(message.edited_at).toLocaleString();
        body.appendChild(mark);
      }
    }

    /* Reaction buttons, updated in place (keyed by emoji) so a focused one keeps its focus. */
    function renderReactions(li, message) {
      var bar = li.querySelector(".reactions");
      var reactions = message.deleted ? [] : (message.reactions || []);
      if (!reactions.length) {
        if (bar) {
          if (bar.contains(document.activeElement)) { li.focus(); }
          bar.remove();
        }
        return;
      }
      if (!bar) {
        bar = document.createElement("div");
        bar.className = "reactions";
        bar.setAttribute("role", "group");
        bar.setAttribute("aria-label", "Reactions");
        li.querySelector(".body").after(bar);
      }
      var existing = {};
      Array.prototype.forEach.call(bar.children, function (chip) { existing[chip.dataset.emoji] = chip; });
      var previous = null;
      reactions.forEach(function (reaction) {
        var chip = existing[reaction.emoji];
        delete existing[reaction.emoji];
        if (!chip) {
          chip = button("reaction", "");
          chip.dataset.emoji = reaction.emoji;
          var emoji = document.createElement("span");
          emoji.className = "emoji";
          emoji.textContent = reaction.emoji;
          emoji.setAttribute("aria-hidden", "true");
          var count = document.createElement("span");
          count.className = "count";
          chip.appendChild(emoji);
          chip.appendChild(count);
          chip.addEventListener("click", function () { react(li, reaction.emoji); });
        }
        var mine = reaction.users.indexOf(me.id) !== -1;
        chip.querySelector(".count").textContent = String(reaction.count);
        chip.classList.toggle("mine", mine);
        chip.setAttribute("aria-pressed", mine ? "true" : "false");
        chip.setAttribute("aria-label", reaction.emoji + " " + reaction.count +
          (reaction.count === 1 ? " reaction" : " reactions") + (mine ? ", including yours" : ""));
        chip.title = mine ? "Click to take your reaction back" : "Click to react with " + reaction.emoji;
        // Moved only when out of place: moving the focused button would drop its focus.
        var slot = previous ? previous.nextElementSibling : bar.firstElementChild;
        if (slot !== chip) { bar.insertBefore(chip, slot); }
        previous = chip;
      });
      Object.keys(existing).forEach(function (emoji) {
        if (existing[emoji] === document.activeElement) { li.focus(); }
        existing[emoji].remove();
      });
    }

    /* A toolbar is one tab stop, and only while its message has the focus (chat.js moves it
       between messages with Up and Down), so Tab does not walk every message's buttons;
       arrows, Home and End move inside it. */
    function toolbarReachable(bar, reachable) {
      var current = Number(bar.dataset.current || 0);
      Array.prototype.forEach.call(bar.children, function (item, index) {
        item.tabIndex = reachable && index === current ? 0 : -1;
      });
    }

    function toolbarKeys(event) {
      var bar = event.currentTarget;
      var items = Array.prototype.slice.call(bar.children);
      var at = items.indexOf(document.activeElement);
      var next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: items.length - 1 }[event.key];
      if (next === undefined || at === -1) { return; }
      event.preventDefault();
      bar.dataset.current = String((next + items.length) % items.length);
      toolbarReachable(bar, true);
      items[Number(bar.dataset.current)].focus();
    }

    function buildToolbar(li, message) {
      var bar = document.createElement("div");
      bar.className = "message-actions";
      bar.setAttribute("role", "toolbar");
      bar.setAttribute("aria-label", "Message from " + message.sender.username);
      QUICK_REACTIONS.forEach(function (emoji) {
        var quick = button("react", emoji, "React with " + emoji);
        quick.dataset.emoji = emoji;
        quick.addEventListener("click", function () { react(li, emoji); });
        bar.appendChild(quick);
      });
      var reply = button("reply", "Reply");
      reply.addEventListener("click", function () { options.reply(li.message); });
      bar.appendChild(reply);
      if (message.sender.id === me.id) {
        var edit = button("edit", "Edit");
        edit.addEventListener("click", function () { startEdit(li); });
        bar.appendChild(edit);
      }
      if (message.sender.id === me.id || options.canModerate) {
        var remove = button("delete", "Delete");
        remove.addEventListener("click", function () { confirmDelete(li, remove); });
        bar.appendChild(remove);
      }
      toolbarReachable(bar, false);
      bar.addEventListener("keydown", toolbarKeys);
      li.addEventListener("focusin", function () { toolbarReachable(bar, true); });
      li.addEventListener("focusout", function (event) {
        if (!li.contains(event.relatedTarget)) { toolbarReachable(bar, false); }
      });
      // No hover on a touch screen: a tap on the message shows its actions.
      li.addEventListener("click", function (event) {
        if (!window.matchMedia("(hover: none)").matches || event.target.closest("button, a, textarea")) { return; }
        var shown = li.parentNode ? li.parentNode.querySelectorAll(".message.selected") : [];
        Array.prototype.forEach.call(shown, function (other) { if (other !== li) { other.classList.remove("selected"); } });
        li.classList.toggle("selected");
      });
      return bar;
    }

    function renderToolbar(li, message) {
      var bar = li.querySelector(".message-actions");
      if (message.deleted || options.readOnly) {
        if (bar) {
          if (bar.contains(document.activeElement)) { li.focus(); }
          bar.remove();
        }
        return;
      }
      if (!bar) {
        bar = buildToolbar(li, message);
        li.appendChild(bar);
      }
      var mine = {};
      (message.reactions || []).forEach(function (reaction) {
        if (reaction.users.indexOf(me.id) !== -1) { mine[reaction.emoji] = true; }
      });
      Array.prototype.forEach.call(bar.querySelectorAll(".react"), function (quick) {
        quick.setAttribute("aria-pressed", mine[quick.dataset.emoji] ? "true" : "false");
      });
    }

    /* Everything of a stored message but its sender and time (chat.js fills those). */
    function render(li, message) {
      li.message = message;
      delete li.dataset.editPending;
      li.tabIndex = -1;
      li.classList.toggle("deleted", message.deleted);
      renderQuote(li, message.reply_to);
      // An open editor keeps what is being typed; a delete elsewhere ends the edit.
      if (li === editingLi && message.deleted) { cancelEdit(); }
      if (li !== editingLi) { renderText(li, message); }
      renderReactions(li, message);
      renderToolbar(li, message);
    }

    function react(li, emoji) {
      if (!options.send({ type: "react", message_id: li.message.id, emoji: emoji })) {
        options.showError("You are offline: the reaction was not sent.");
      }
    }

    /* Editing in place: the body becomes a textarea until saved or cancelled. */
    function startEdit(li) {
      if (!li || !li.message || li.message.deleted || li.message.sender.id !== me.id) { return false; }
      if (editingLi) { cancelEdit(); }
      editingLi = li;
      li.classList.add("editing");
      var body = li.querySelector(".body");
      var box = document.createElement("div");
      box.className = "edit-box";
      var field = document.createElement("textarea");
      field.className = "edit-input";
      field.rows = 2;
      field.maxLength = 4000;
      field.value = li.message.body;
      field.setAttribute("aria-label", "Edit message");
      var help = document.createElement("p");
      help.className = "meta edit-help";
      help.id = "edit-help-" + li.message.id;
      help.textContent = "Enter saves, Escape cancels.";
      field.setAttribute("aria-describedby", help.id);
      var save = button("save-edit", "Save");
      var cancel = button("cancel-edit secondary", "Cancel");
      save.addEventListener("click", function () { saveEdit(); });
      cancel.addEventListener("click", function () { cancelEdit(); });
      field.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); saveEdit(); }
        if (event.key === "Escape") { event.preventDefault(); cancelEdit(); }
      });
      box.appendChild(field);
      box.appendChild(save);
      box.appendChild(cancel);
      box.appendChild(help);
      body.hidden = true;
      body.after(box);
      field.focus();
      field.setSelectionRange(field.value.length, field.value.length);
      li.scrollIntoView({ block: "nearest" });
      return true;
    }

    function closeEditor() {
      var li = editingLi;
      editingLi = null;
      li.classList.remove("editing");
      var box = li.querySelector(".edit-box");
      if (box) { box.remove(); }
      li.querySelector(".body").hidden = false;
      renderText(li, li.message);
      options.composer.focus();
    }

    function cancelEdit() {
      if (editingLi) { closeEditor(); }
    }

    function saveEdit() {
      var li = editingLi;
      var body = li.querySelector(".edit-input").value.trim();
      if (!body) { options.showError("A message cannot be empty: use Delete to remove it."); return; }
      if (body.length > 4000) { options.showError("Messages can be at most 4000 characters."); return; }
      if (body !== li.message.body &&
          !options.send({ type: "edit", message_id: li.message.id, body: body })) {
        options.showError("You are offline: the edit was not saved.");
        return;
      }
      options.showError("");
      closeEditor();
      if (body !== li.message.body) {
        // Shown at once; the server's message_update (or its refusal, or settle) settles it.
        options.renderBody(li.querySelector(".body"), body);
        li.dataset.editPending = "true";
      }
    }

    /* After a resume's replay: an edit still shown but never confirmed was lost with the old
       connection, so the stored text comes back (the reader can edit again). */
    function settle() {
      Array.prototype.forEach.call(options.list.querySelectorAll(".message[data-edit-pending]"), function (li) {
        render(li, li.message);
      });
    }

    /* Deleting asks first, in a modal dialog: focus goes into it, and back when it closes. */
    function confirmDelete(li, opener) {
      dialogTarget = li;
      dialogReturn = opener;
      dialogExcerpt.textContent = li.message.body;
      dialog.showModal();
      document.getElementById("delete-cancel").focus();
    }

    /* Up and Down on the list or a message move the focus from message to message (Tab then
       reaches that message's links, reactions and actions). */
    options.list.addEventListener("keydown", function (event) {
      if ((event.key !== "ArrowUp" && event.key !== "ArrowDown") || event.altKey || event.ctrlKey ||
          event.metaKey || event.shiftKey) { return; }
      var from = event.target === options.list ? null : event.target;
      if (from && !from.matches(".message[data-id]")) { return; }
      var all = Array.prototype.slice.call(options.list.querySelectorAll(".message[data-id]"));
      var up = event.key === "ArrowUp";
      var next = from ? all.indexOf(from) + (up ? -1 : 1) : (up ? all.length - 1 : 0);
      if (next < 0 || next >= all.length) { return; }
      event.preventDefault();
      all[next].focus();
    });

    if (dialog) {
      document.getElementById("delete-cancel").addEventListener("click", function () { dialog.close("cancel"); });
      document.getElementById("delete-confirm").addEventListener("click", function () { dialog.close("delete"); });
      dialog.addEventListener("close", function () {
        var li = dialogTarget;
        dialogTarget = null;
        if (dialog.returnValue === "delete" && li) {
          if (options.send({ type: "delete", message_id: li.message.id })) {
            li.focus();
          } else {
            options.showError("You are offline: the message was not deleted.");
            if (dialogReturn) { dialogReturn.focus(); }
          }
        } else if (dialogReturn && dialogReturn.isConnected) {
          dialogReturn.focus();
        }
        dialog.returnValue = "";
      });
    }

    return {
      render: render,
      renderQuote: renderQuote,
      edit: startEdit,
      cancelEdit: cancelEdit,
      settle: settle
    };
  }

  window.MessageActions = MessageActions;
})();
