// The three functions of vega-util that the vendored vega-interpreter imports (its one changed line
// points here, see VENDORED.md). The vendored vega bundle, a classic script loaded before the
// charts, already carries vega-util and puts it on window.vega: no second copy is loaded.
const vega = window.vega;
export const ascending = vega.ascending;
export const isString = vega.isString;
export const DisallowedObjectProperties = vega.DisallowedObjectProperties;
