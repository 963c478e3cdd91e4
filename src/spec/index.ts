/**
 * spec/ — parsers for the small string syntaxes users type into flags and
 * options (buildx's CSV fields, sizes such as `512m`), shared by the CLI, the
 * front end and the cache specs so each syntax has one parser. Pure functions.
 * May import: errors/.
 */
export { splitCsv, csvFields, csvMap, CsvQuoteError, type CsvField } from './csv.js';
export { parseSize, formatSize } from './size.js';
