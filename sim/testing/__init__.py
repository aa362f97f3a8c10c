"""Helpers for test suites that drive lfrsim: hypothesis strategies in ``sim.testing.strategies``.

The strategies need the ``hypothesis`` package (``pip install 'lfrsim[test]'``); importing this
package does not.
"""
