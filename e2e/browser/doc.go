// Package browser holds the end-to-end tests of the web client in a real
// headless Chromium, and the Playwright driver they use (driver.mjs).
package browser
