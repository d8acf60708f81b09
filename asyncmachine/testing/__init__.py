"""Helpers for testing apps built on asyncmachine.

``asyncmachine.testing.playwright`` reads and drives the machines of a page that uses the JS bridge
(``asyncmachine.mjs``) from Playwright tests. Importing this package never imports Playwright, so it
is safe everywhere the library runs, Pyodide included.
"""
