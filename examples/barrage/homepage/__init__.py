"""The barrage demo's HomePage (function class, `asgi` signature): the page, Send, and the live stage."""
