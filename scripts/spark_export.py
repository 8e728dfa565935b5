"""sr2fhir's command line as a file `spark-submit` can run (it takes a .py file, not a console
script): `spark-submit --master URL scripts/spark_export.py export INPUT... -o OUTDIR --engine spark`.
The master (and every other setting) then comes from spark-submit (docs/export.md)."""

from sr2fhir.cli import main

if __name__ == "__main__":
    main()
