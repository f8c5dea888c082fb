"""`python -m flashtui.worker`: the measurement worker process (see flashtui.engine.server)."""

if __name__ == "__main__":
    from flashtui.engine.server import main

    raise SystemExit(main())
