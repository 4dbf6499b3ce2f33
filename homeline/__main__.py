from homeline.cli import main

raise SystemExit(main())
