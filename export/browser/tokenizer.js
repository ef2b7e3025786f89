// Text -> token ids exactly as modelyard/encoding.py's TextEncoder (Keras' text_to_word_sequence with its
// defaults, then Keras' dataset id rules: start mark, ids offset by index_from, OOV past num_words) -> multi-hot.
// A classic script (works from file://): defines globalThis.ModelyardTokenizer; in Node, module.exports.
(function (root) {
  "use strict";

  function escapeForClass(ch) {
    return "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0");
  }

  /**
   * @param {object} pre  {filters, index_from, start_char, oov_char, num_words}
   * @param {Array} vocab  [word, rank] pairs (rank 1 = most frequent; words whose id would reach num_words may be
   *   left out): pairs, not an object, so that words such as "__proto__" are plain keys
   */
  function createTokenizer(pre, vocab) {
    const filtered = new RegExp("[" + Array.from(pre.filters, escapeForClass).join("") + "]", "g");
    const index = new Map(vocab);

    function tokenize(text) {
      return text.toLowerCase().replace(filtered, " ").split(" ").filter((t) => t.length > 0);
    }

    function wordId(word) {
      const rank = index.get(word);
      if (rank === undefined) return pre.oov_char;
      const id = rank + pre.index_from;
      return id < pre.num_words ? id : pre.oov_char;
    }

    function ids(text) {
      return [pre.start_char].concat(tokenize(text).map(wordId));
    }

    /** One float32 row of width num_words per text, 1 at every id the text contains. */
    function multiHot(texts) {
      const out = new Float32Array(texts.length * pre.num_words);
      texts.forEach((text, row) => {
        for (const id of ids(text)) out[row * pre.num_words + id] = 1;
      });
      return out;
    }

    return { tokenize, wordId, ids, multiHot };
  }

  const api = { createTokenizer };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.ModelyardTokenizer = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
