// The package ships no types: its one export, as its README gives it (prom2json's shape).
declare module "parse-prometheus-text-format" {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
