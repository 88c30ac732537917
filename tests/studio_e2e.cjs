// Drives the studio's page in Debian's chromium through puppeteer-core (no browser download), as a
// person would: open the bundled example scan, draw an outline with clicks on the canvas, set a
// thickness, paint a stroke of the thickness brush, build the appliance, ask for the mold for a subject without consent (refused in the
// page), then for a consenting one, look at the pieces on the printer and take the files. Prints
// one JSON line with what it saw.
// Last, a scan of the cast (the file the run wrote for the marked appliance, once the mold is made)
// is dropped on the trace box.
//   node tests/studio_e2e.cjs URL SCAN SCREENSHOT REFUSED_SUBJECT SUBJECT CAST_SCAN
const path = require('path');
const puppeteer = require(path.join(__dirname, '..', 'web', 'node_modules', 'puppeteer-core'));

//! Waits until the table has rows and the page is no longer working.
function filled(page, table) {
  return page.waitForFunction((t) => document.querySelector(t).rows.length > 0 && !document.querySelector('#status.working'), { timeout: 120000 }, table);
}

//! Types the appliance's thickness, clicks Build and waits for the new appliance's figures: the
//! seconds from the click until they show.
async function timedBuild(page, thickness) {
  await page.$eval('[data-key=thickness_mm]', (el, t) => { el.value = t; }, thickness);
  await page.$eval('#appliance-figures', (t) => { t.innerHTML = ''; });
  const t0 = Date.now();
  await page.click('#build');
  await filled(page, '#appliance-figures');
  return (Date.now() - t0) / 1000;
}

//! The outline the server last built the appliance from, as text.
function outlineBuilt(page) {
  return page.evaluate(async () => JSON.stringify((await (await fetch('api/session')).json()).session.appliance.options.region.points));
}

//! The seconds the server took for the last build (the rest of an edit's time is the page's).
function serverSeconds(page) {
  return page.evaluate(async () => (await (await fetch('api/session')).json()).session.appliance.seconds);
}

async function main() {
  const [url, scan, screenshot, refusedSubject, subject, castScan] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: 'new',
    args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--use-angle=swiftshader', '--window-size=1400,900'],
    defaultViewport: { width: 1400, height: 900 },
  });
  const out = { console_errors: [], points: 0, builds: [] };
  try {
    const page = await browser.newPage();
    // The browser logs every refused request; the one refusal asked for is counted apart.
    out.refusal_logged = 0;
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (out.expect_refusal && m.text().includes('status of 400')) ++out.refusal_logged;
      else out.console_errors.push(m.text());
    });
    page.on('pageerror', (e) => out.console_errors.push(String(e)));
    await page.goto(url);
    await page.waitForSelector('body[data-rendered=yes]', { timeout: 30000 });
    // 1. the scan, as a file chosen in the page
    const input = await page.$('#file');
    await input.uploadFile(scan);
    await filled(page, '#scan-figures');
    // 2. the outline: clicks round the middle of the view, where the framed face is
    await page.click('#draw');
    const box = await (await page.$('#canvas')).boundingBox();
    const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
    const n = 10;
    for (let i = 0; i < n; ++i) {
      const a = (2 * Math.PI * i) / n;
      await page.mouse.click(cx + 0.16 * box.height * Math.cos(a), cy - 0.05 * box.height + 0.11 * box.height * Math.sin(a));
    }
    out.points = await page.evaluate(() => parseInt(document.querySelector('#outline-count').textContent, 10) || 0);
    // undo the last point, redo it: the same count
    await page.click('#undo');
    out.after_undo = await page.evaluate(() => parseInt(document.querySelector('#outline-count').textContent, 10) || 0);
    await page.click('#redo');
    out.after_redo = await page.evaluate(() => parseInt(document.querySelector('#outline-count').textContent, 10) || 0);
    out.region = await page.$eval('#region', (s) => s.value);
    // 3. a thickness, 4. the appliance
    out.builds.push(await timedBuild(page, '2.5'));
    out.error = await page.$eval('#error', (el) => el.textContent);
    // an opening drawn the same way: five clicks round the bridge of the nose, then drawing stopped
    await page.click('#draw-opening');
    for (let i = 0; i < 5; ++i) {
      const a = (2 * Math.PI * i) / 5;
      await page.mouse.click(cx + 0.025 * box.height * Math.cos(a), cy - 0.02 * box.height + 0.025 * box.height * Math.sin(a));
    }
    await page.click('#draw-opening');
    // a thinner zone over the brows: its thickness set, four clicks, then drawing stopped
    await page.$eval('#zone-thickness', (el) => { el.value = '1.2'; });
    await page.click('#draw-zone');
    for (const [dx, dy] of [[-0.04, -0.14], [0.04, -0.14], [0.04, -0.09], [-0.04, -0.09]])
      await page.mouse.click(cx + dx * box.height, cy + dy * box.height);
    await page.click('#draw-zone');
    // a stroke of the thickness brush across the left cheek, then painting stopped: the appliance
    // is built again by itself once the stroke ends
    await page.$eval('#brush-thickness', (el) => { el.value = '3.5'; });
    await page.$eval('#brush-strength', (el) => { el.value = '1'; });
    await page.click('#paint');
    await page.$eval('#appliance-figures', (t) => { t.innerHTML = ''; });
    await page.mouse.move(cx - 0.12 * box.height, cy);
    await page.mouse.down();
    for (let i = 1; i <= 12; ++i) await page.mouse.move(cx - 0.12 * box.height + 0.005 * i * box.height, cy);
    await page.mouse.up();
    await filled(page, '#appliance-figures');
    await page.click('#paint');
    out.outline_count = await page.$eval('#outline-count', (el) => el.textContent);
    // 5. ten edits, each followed by the preview: the time from the click (or the drag's release)
    // to the new appliance shown. They alternate: a thickness typed and Build, then one of the
    // outline's points on the right of the face dragged 8 px outwards, which cuts the skin again
    // and builds by itself.
    out.edits = [];
    out.thickness_edits = [];
    out.outline_edits = [];
    out.outlines_built = [await outlineBuilt(page)];
    out.outline_server_s = [];
    await page.click('#draw');
    for (let i = 1; i <= 5; ++i) {
      const t = await timedBuild(page, (2.5 + 0.1 * i).toFixed(2));
      out.edits.push(t);
      out.thickness_edits.push(t);
      const a = (2 * Math.PI * [0, 1, 9, 2, 8][i - 1]) / n;
      const x = cx + 0.16 * box.height * Math.cos(a), y = cy - 0.05 * box.height + 0.11 * box.height * Math.sin(a);
      await page.$eval('#appliance-figures', (el) => { el.innerHTML = ''; });
      await page.mouse.move(x, y);
      await page.mouse.down();
      for (let k = 1; k <= 4; ++k) await page.mouse.move(x + 2 * k * Math.cos(a), y + 2 * k * Math.sin(a));
      const t0 = Date.now();
      await page.mouse.up();
      await filled(page, '#appliance-figures');
      const d = (Date.now() - t0) / 1000;
      out.edits.push(d);
      out.outline_edits.push(d);
      // the outline the server built from, to show that each drag moved it
      out.outlines_built.push(await outlineBuilt(page));
      out.outline_server_s.push(await serverSeconds(page));
    }
    await page.click('#draw');
    out.final_thickness = await page.$eval('[data-key=thickness_mm]', (el) => el.value);
    // the thickness map, as report.html colours it, shows the zone and the stroke
    await page.select('#colour', 'thickness');
    await page.waitForFunction(() => document.querySelector('#legend').textContent.length > 0 && !document.querySelector('#status.working'), { timeout: 60000 });
    out.legend = await page.$eval('#legend', (el) => el.textContent);
    await page.screenshot({ path: screenshot.replace(/\.png$/, '-outline.png') });
    // 6. the mold: refused for a subject without consent, the reason in the page
    const make = async (who) => {
      await page.$eval('#subject', (el, v) => { el.value = v; }, who);
      await page.$eval('#error', (el) => { el.textContent = ''; });
      await page.click('#make');
      await page.waitForFunction(() => !document.querySelector('#status.working') &&
                                   (document.querySelector('#error').textContent || document.querySelector('#mold-figures').rows.length),
                                 { timeout: 300000 });
      return page.$eval('#error', (el) => el.textContent);
    };
    // The mold on a 1 mm grid (the mold form's resolution, as a person in a hurry would set it):
    // the default 0.5 mm grid takes four times the nodes, and nothing here measures the mold's detail.
    await page.$eval('#mold-form [data-key=resolution_mm]', (el) => { el.value = '1'; });
    out.expect_refusal = true;
    out.refused = await make(refusedSubject);
    out.expect_refusal = false;
    out.made_error = await make(subject);
    out.mold_rows = await page.$eval('#mold-figures', (t) => [...t.rows].map((r) => r.textContent));
    out.casting_rows = await page.$eval('#casting-sheet', (t) => [...t.rows].map((r) => [...r.cells].map((c) => c.textContent)));
    // 7. the pieces on the printer, and the files as the page's links fetch them
    await page.click('#plate');
    await page.waitForFunction(() => document.querySelector('#plate').textContent.startsWith('Back') && !document.querySelector('#status.working'),
                               { timeout: 60000 });
    await page.screenshot({ path: screenshot });
    out.downloads = await page.$$eval('#run-files a', async (links) => {
      const sizes = {};
      for (const a of links) sizes[a.textContent] = (await (await fetch(a.href)).arrayBuffer()).byteLength;
      return sizes;
    });
    // 8. trace: the cast's scan to its record
    await (await page.$('#trace-file')).uploadFile(castScan);
    await filled(page, '#trace-figures');
    out.trace_rows = await page.$eval('#trace-figures', (t) => Object.fromEntries([...t.rows].map((r) => [r.cells[0].textContent, r.cells[1].textContent])));
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.log(JSON.stringify({ failed: String(e) })); process.exit(1); });
