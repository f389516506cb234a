from llmcalc.cli import main

raise SystemExit(main())
