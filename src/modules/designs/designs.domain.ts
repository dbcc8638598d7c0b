/** Free tags an owner puts on a design (issue 19): at most this many, each lowercase, 2–24 characters. */
export const DESIGN_TAGS_MAX = 5;
export const DESIGN_TAG_MIN_LENGTH = 2;
export const DESIGN_TAG_MAX_LENGTH = 24;
/** Letters, digits and inner hyphens, lowercase: "french-tip", "y2k". */
export const DESIGN_TAG_PATTERN = '^[a-z0-9]+(-[a-z0-9]+)*$';
