"""Batch policies: what a policy is (jest.policies.base), the registry that names them
(jest.policies.registry), reference access (jest.policies.reference), and JEST itself."""
