/** A message's text, after trimming (SPEC §3 messages). */
export const MESSAGE_MAX_LENGTH = 2000;
