// Every visible string, in Chinese (the default) and English. Static text is marked in the HTML
// with data-i18n="key" (text) or data-i18n-attr="attr:key;attr:key"; scripts call t(key, vars).

import { MESSAGES } from "./messages.js";

const STORE = "consent-ledger.lang";
export const LANGUAGES = ["zh", "en"];
let current = LANGUAGES.includes(localStorage.getItem(STORE)) ? localStorage.getItem(STORE) : "zh";
const listeners = [];

export function lang() {
  return current;
}

export function t(key, vars = {}) {
  const text = MESSAGES[current][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A vocabulary value (category, purpose, ...) in words, or the code itself if unknown. */
export function term(kind, code) {
  const key = `${kind}.${code}`;
  return key in MESSAGES[current] || key in MESSAGES.en ? t(key) : code;
}

export function translatePage(root = document) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr, t(key));
    }
  }
  const title = document.querySelector("title[data-i18n]");
  if (title) document.title = title.textContent;
}

export function setLang(value) {
  if (!LANGUAGES.includes(value)) return;
  current = value;
  localStorage.setItem(STORE, value);
  translatePage();
  for (const listener of listeners) listener(value);
}

export function onLangChange(listener) {
  listeners.push(listener);
}

/** Wire the page's language switch: a button offering the other language. */
export function installSwitch(button) {
  const show = () => {
    const other = current === "zh" ? "en" : "zh";
    button.textContent = t(`lang.switch.${other}`);
    button.setAttribute("lang", other === "zh" ? "zh-CN" : "en");
  };
  button.addEventListener("click", () => setLang(current === "zh" ? "en" : "zh"));
  onLangChange(show);
  show();
}

export function formatTime(iso) {
  if (!iso) return "";
  const locale = current === "zh" ? "zh-CN" : "en-GB";
  return new Date(iso).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}

export function formatDate(iso) {
  if (!iso) return "";
  const locale = current === "zh" ? "zh-CN" : "en-GB";
  return new Date(iso).toLocaleDateString(locale, { dateStyle: "long" });
}

export function list(values) {
  return values.join(current === "zh" ? "、" : ", ");
}
