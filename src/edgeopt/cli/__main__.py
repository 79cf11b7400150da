"""``python -m edgeopt.cli ...`` (how ``optimize --search --workers N`` starts its workers)."""

from .app import main

if __name__ == "__main__":
    main()
