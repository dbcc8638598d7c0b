/** Ratings of delivered orders by their customers (issue 19). */
export const RATING_STARS = { min: 1, max: 5 } as const;
export const RATING_COMMENT_MAX_LENGTH = 1000;
/** A rating may be changed for this many days after it was first given. */
export const RATING_EDITABLE_DAYS = 14;
