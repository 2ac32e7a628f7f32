from paid.cli import main

raise SystemExit(main())
