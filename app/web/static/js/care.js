import { announce, t } from "./doorstep.js";
announce(t("Connected"));
