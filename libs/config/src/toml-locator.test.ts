import { parse } from "smol-toml";
import { describe, expect, it } from "vitest";
import { TomlLocator } from "./toml-locator.js";

const text = `# an app
app = "web"   # trailing comment
"quoted key" = 1
site.name = "x"

[build]
  dockerfile = "Dockerfile"
  [build.args]
    NODE = "20"

[http_service]
  internal_port = 8080
  processes = [
    "app",
    "worker",
  ]
  motd = """
[not_a_table]
fake = 1
"""
  [http_service.concurrency]
    type = "connections"

  [[http_service.checks]]
    path = "/"
  [[http_service.checks]]
    path = "/health"
    headers = { "X-A" = "b" }

[[services]]
  internal_port = 1
  [[services.ports]]
    port = 80
  [[services.ports]]
    port = 443

[[services]]
  internal_port = 2
  [[services.ports]]
    port = 81

[ env ]
  'literal.key' = 'v'
  a."b.c" = 2
`;

describe("TomlLocator", () => {
  const locate = new TomlLocator(text);
  const line = (...path: (string | number)[]) => locate.lineOf(path);

  it("is given a document the parser accepts", () => {
    expect(() => parse(text)).not.toThrow();
  });

  it("finds root keys: bare, quoted and dotted", () => {
    expect(line("app")).toBe(2);
    expect(line("quoted key")).toBe(3);
    expect(line("site")).toBe(4);
    expect(line("site", "name")).toBe(4);
  });

  it("finds tables, their sub-tables and keys", () => {
    expect(line("build")).toBe(6);
    expect(line("build", "dockerfile")).toBe(7);
    expect(line("build", "args")).toBe(8);
    expect(line("build", "args", "NODE")).toBe(9);
    expect(line("http_service", "internal_port")).toBe(12);
    expect(line("http_service", "concurrency", "type")).toBe(22);
  });

  it("finds the elements of a multi-line array", () => {
    expect(line("http_service", "processes")).toBe(13);
    expect(line("http_service", "processes", 0)).toBe(14);
    expect(line("http_service", "processes", 1)).toBe(15);
  });

  it("is not fooled by a multi-line string that looks like TOML", () => {
    expect(line("not_a_table")).toBeUndefined();
    expect(line("http_service", "motd")).toBe(17);
  });

  it("counts arrays of tables, nested ones per parent element", () => {
    expect(line("http_service", "checks", 0, "path")).toBe(25);
    expect(line("http_service", "checks", 1)).toBe(26);
    expect(line("http_service", "checks", 1, "path")).toBe(27);
    expect(line("services", 0, "internal_port")).toBe(31);
    expect(line("services", 0, "ports", 1, "port")).toBe(35);
    expect(line("services", 1)).toBe(37);
    expect(line("services", 1, "ports", 0, "port")).toBe(40);
  });

  it("falls back to the longest prefix it knows: keys of inline tables, missing keys", () => {
    expect(line("http_service", "checks", 1, "headers", "X-A")).toBe(28);
    expect(line("http_service", "nope")).toBe(11);
    expect(line("nowhere")).toBeUndefined();
  });

  it("handles spaced headers, literal keys and quoted parts of dotted keys", () => {
    expect(line("env")).toBe(42);
    expect(line("env", "literal.key")).toBe(43);
    expect(line("env", "a", "b.c")).toBe(44);
  });
});
