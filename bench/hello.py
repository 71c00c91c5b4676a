"""The ceiling: a hello-world Flask app served by the same gunicorn settings as necreg."""

from flask import Flask, redirect, request

app = Flask(__name__)


@app.get("/", defaults={"path": ""})
@app.get("/<path:path>")
def hello(path):
    return "Hello, World!"


@app.post("/", defaults={"path": ""})
@app.post("/<path:path>")
def hello_post(path):
    # Parse the form like a registration does, then answer as it does: 303.
    return redirect(f"/?n={len(request.form)}", 303)
