import { describe, expect, it } from "vitest";
import { escapeHtml, html } from "./html.js";

describe("html", () => {
  it("escapes every interpolated value, in content and in attributes", () => {
    const name = `<script>alert("x")</script>' & more`;
    const out = html`<td title="${name}">${name}</td>`.value;
    expect(out).toBe(
      '<td title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &amp; more">' +
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &amp; more</td>",
    );
  });

  it("keeps its own markup, joins lists and drops nothing-values", () => {
    const rows = ["a<b", "c"].map((x) => html`<li>${x}</li>`);
    expect(html`<ul>${rows}</ul>${null}${undefined}${false}${3}`.value).toBe(
      "<ul><li>a&lt;b</li><li>c</li></ul>3",
    );
    expect(escapeHtml("plain")).toBe("plain");
  });
});
