"""The router's money side: quotes and estimates, budget checks, the spending
ledger, reconciliation with the provider's bill and cost reports. A charge's whole
path is here; the public price lists are IonQ's (:mod:`qstore_pl.devices.ionq.pricing`)."""
