from minikubectl.main import main

raise SystemExit(main())
