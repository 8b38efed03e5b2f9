/** The core's check: a zone is valid when Intl knows it (aliases such as US/Eastern included). */
export { isValidTimeZone } from "@tollgate/core";
