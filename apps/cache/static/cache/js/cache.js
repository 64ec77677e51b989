// The cache lab's run-page panels.
