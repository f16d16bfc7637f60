// driver.mjs runs Debian's headless Chromium for the Go tests in this
// directory. It reads one command per line on stdin and answers each with
// one line on stdout, "ok [result]" or "error message":
//
//   goto URL            open a page and wait for it to load
//   type TEXT           type text into whatever has the focus
//   press KEY           press a key (Enter, Shift+Enter, …)
//   click X Y           click at page coordinates
//   move X Y            move the mouse there (hover)
//   title               the document title
//   eval EXPR           evaluate a JavaScript expression, JSON result
//   waitfor EXPR        wait (up to 30 s) until a JavaScript expression is
//                       true in the page; Playwright checks it in the page
//   shot PATH           save a screenshot as PNG
//   viewport W H        resize the page to W×H CSS pixels
//   init JSON           run the script (a JSON string) in every document the
//                       page loads, before the page's own scripts
//   allow NAME PERM     give the page window.NAME(), which grants PERM (e.g.
//                       notifications) to the page's origin in the browser
//                       context: what a person's "Allow" in the prompt does
//   realfocus           stop emulating focus: Playwright tells every page it
//                       has the focus; after this the page has it only while
//                       its tab is in front, as in a person's browser
//   hide                open another tab in front of the page (its window
//                       loses the focus, as when a person switches tabs)
//   show                bring the page's tab back to the front
//   choose X Y PATH     click at X Y and give the file chooser that the
//                       click opens (the page's <input type=file>) the file PATH
//   download X Y PATH   click at X Y and save the download that the click
//                       starts as PATH; answers the name the page gave it
//   quit                close the browser and exit
//
// Console messages and page errors go to stderr, for the test log.
import { chromium } from "playwright-core";
import readline from "node:readline";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const context = await browser.newContext({
  viewport: { width: 420, height: 720 },
  deviceScaleFactor: 2, // crisp text for reading the screen back
});
const page = await context.newPage();
page.on("console", (m) => console.error(`console.${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => console.error(`pageerror: ${e.message}`));

let other; // the tab that hide puts in front of the page

// The file choosers the page opens, intercepted from the start: a
// listener added only around a click enables the interception
// asynchronously, and a chooser opened before that is not reported.
const choosers = [];
let chooserWaiter = null;
page.on("filechooser", (c) => {
  if (chooserWaiter) { chooserWaiter(c); chooserWaiter = null; } else choosers.push(c);
});
function nextChooser() {
  if (choosers.length > 0) return Promise.resolve(choosers.shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { chooserWaiter = null; reject(new Error("no file chooser opened within 30 s")); }, 30000);
    chooserWaiter = (c) => { clearTimeout(timer); resolve(c); };
  });
}

const commands = {
  async goto(url) { await page.goto(url, { waitUntil: "load" }); },
  async type(text) { await page.keyboard.type(text, { delay: 20 }); },
  async press(key) { await page.keyboard.press(key); },
  async click(xy) { const [x, y] = xy.split(" ").map(Number); await page.mouse.click(x, y); },
  async move(xy) { const [x, y] = xy.split(" ").map(Number); await page.mouse.move(x, y); },
  async title() { return await page.title(); },
  async eval(expr) { return JSON.stringify(await page.evaluate(expr)); },
  // A timer, not requestAnimationFrame: a page in a background tab gets no
  // animation frames, and tests wait on such pages too.
  // A function, not the string: the page's CSP forbids eval, and
  // Playwright sends a function's source as code of its own.
  async waitfor(expr) { await page.waitForFunction(new Function(`return (${expr});`), undefined, { timeout: 30000, polling: 50 }); },
  async shot(path) { await page.screenshot({ path }); },
  async viewport(wh) { const [width, height] = wh.split(" ").map(Number); await page.setViewportSize({ width, height }); },
  async init(json) { await page.addInitScript(JSON.parse(json)); },
  async allow(arg) {
    const [name, permission] = arg.split(" ");
    await page.exposeBinding(name, async ({ page }) => {
      await context.grantPermissions([permission], { origin: new URL(page.url()).origin });
    });
  },
  async realfocus() {
    const cdp = await context.newCDPSession(page);
    await cdp.send("Emulation.setFocusEmulationEnabled", { enabled: false });
  },
  async hide() {
    if (!other) other = await context.newPage();
    await other.bringToFront();
  },
  async show() { await page.bringToFront(); },
  async choose(arg) {
    const [x, y, ...path] = arg.split(" ");
    await page.mouse.click(Number(x), Number(y));
    const chooser = await nextChooser();
    await chooser.setFiles(path.join(" "));
  },
  async download(arg) {
    const [x, y, ...path] = arg.split(" ");
    const [d] = await Promise.all([
      page.waitForEvent("download", { timeout: 30000 }),
      page.mouse.click(Number(x), Number(y)),
    ]);
    await d.saveAs(path.join(" "));
    return d.suggestedFilename();
  },
};

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const sp = line.indexOf(" ");
  const [cmd, arg] = sp < 0 ? [line, ""] : [line.slice(0, sp), line.slice(sp + 1)];
  if (cmd === "quit") break;
  try {
    if (!commands[cmd]) throw new Error(`unknown command ${cmd}`);
    const result = await commands[cmd](arg);
    process.stdout.write(result === undefined ? "ok\n" : `ok ${String(result).replace(/\n/g, " ")}\n`);
  } catch (e) {
    process.stdout.write(`error ${String(e.message).replace(/\n/g, " ")}\n`);
  }
}
await browser.close();
// Exit now: stdin is still open (the test closes it only after the
// driver has exited), and node would otherwise wait on it.
process.exit(0);
