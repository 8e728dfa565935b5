package sr2fhir;

import java.io.FileInputStream;
import java.io.InputStream;
import java.util.Collections;

import org.hl7.fhir.r5.elementmodel.Manager.FhirFormat;
import org.hl7.fhir.r5.model.OperationOutcome;
import org.hl7.fhir.validation.ValidationEngine;

/** Validates FHIR JSON files with the HL7 validation engine, offline, and prints one line per issue. */
public class OfficialValidator {
  public static void main(String[] args) throws Exception {
    ValidationEngine engine = new ValidationEngine.ValidationEngineBuilder()
        .withNoTerminologyServer()
        .withCanRunWithoutTerminologyServer(true)
        .withThoVersion("7.0.1")
        .withExtensionsVersion("5.3.0-ballot-tc1")
        .withVersion("5.0.0")
        .fromSource("hl7.fhir.r5.core#5.0.0");
    engine.loadPackage("hl7.fhir.uv.dicom-sr", "1.0.0");
    engine.prepare();
    for (String file : args) {
      try (InputStream in = new FileInputStream(file)) {
        OperationOutcome oo = engine.validate(FhirFormat.JSON, in, Collections.emptyList());
        for (OperationOutcome.OperationOutcomeIssueComponent issue : oo.getIssue()) {
          String where = issue.getExpression().isEmpty() ? "" : issue.getExpression().get(0).getValue();
          System.out.println(file + "\t" + issue.getSeverity().toCode() + "\t" + where + "\t" + issue.getDetails().getText());
        }
      }
    }
  }
}
