/** A comment's text, after trimming (SPEC §4). */
export const COMMENT_MAX_LENGTH = 1000;
