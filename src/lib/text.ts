/**
 * Text that reaches PostgreSQL, JSON and e-mail must be valid Unicode. A JavaScript string can hold half of a
 * surrogate pair (a JSON body may escape one as "\ud800", and cutting a string by length can split an emoji),
 * and PostgreSQL's jsonb refuses it: the insert of the event that carries the text fails.
 */

/** Half of a surrogate pair with no other half (in Unicode mode a whole pair is one code point, not Cs). */
export const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;

/** `s` without lone surrogates. */
export const wellFormed = (s: string) => s.replace(LONE_SURROGATES, '');

/** At most `max` UTF-16 units of `s`, ending with `mark` when cut, and never ending with half of an emoji. */
export function shorten(s: string, max: number, mark = '…'): string {
  if (s.length <= max) return s;
  let end = max - mark.length;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return s.slice(0, end) + mark;
}
