"""The scale ladder: rungs of learner size as ordinary arms (jest.ladder.rungs) and each rung's
learning rate from its sweep (jest.ladder.lr)."""
