// The catalogue's services by code, in the page's language: one list for every page (literal
// msgids, so `make i18n` finds them). A service added later shows the API's name until it is here.
import { t } from "./doorstep.js";

const NAMES = {
  meal_delivery: t("Meal delivery"),
  cleaning: t("Home cleaning"),
  bathing: t("Bathing assistance"),
  personal_care: t("Personal care"),
  nursing_visit: t("Nurse visit"),
  medication_help: t("Medication help"),
  hospital_escort: t("Escort to hospital"),
  rehabilitation: t("Rehabilitation exercise"),
  companionship: t("Companionship"),
  emergency_help: t("Emergency help"),
};

/** Codes in the order the senior's tiles show them (everyday services first). */
export const SERVICE_CODES = Object.keys(NAMES);

/** The service's name for a code; else the API's name, else the code in words. */
export function serviceName(code, fallback = "") {
  return NAMES[code] || fallback || code.replaceAll("_", " ");
}
