"""`python -m flashtui.worker`: the measurement worker process (see flashtui.engine.worker)."""

if __name__ == "__main__":
    from flashtui.engine.worker import main

    raise SystemExit(main())
