// The service's home page: links to the three apps.
import { startPage } from "./common.js";

startPage();
