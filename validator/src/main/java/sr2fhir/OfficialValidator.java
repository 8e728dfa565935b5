package sr2fhir;

import java.io.FileInputStream;
import java.io.InputStream;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import org.hl7.fhir.r5.elementmodel.Manager.FhirFormat;
import org.hl7.fhir.r5.model.OperationOutcome;
import org.hl7.fhir.validation.ValidationEngine;

/**
 * Validates FHIR JSON files with the HL7 validation engine, offline, and prints one line per issue.
 *
 * <p>Usage: {@code OfficialValidator [-version 4.0.1] FILE...}. FHIR R5 with the IG (the default), or
 * FHIR R4 (core, terminology and extensions packages only: the IG's profiles are R5).
 */
public class OfficialValidator {
  public static void main(String[] args) throws Exception {
    String version = "5.0.0";
    List<String> files = Arrays.asList(args);
    if (args.length >= 2 && args[0].equals("-version")) {
      version = args[1];
      files = files.subList(2, files.size());
    }
    boolean r4 = version.startsWith("4.0");
    ValidationEngine engine = new ValidationEngine.ValidationEngineBuilder()
        .withNoTerminologyServer()
        .withCanRunWithoutTerminologyServer(true)
        .withThoVersion("7.0.1")
        .withExtensionsVersion("5.3.0-ballot-tc1")
        .withVersion(r4 ? "4.0.1" : "5.0.0")
        .fromSource(r4 ? "hl7.fhir.r4.core#4.0.1" : "hl7.fhir.r5.core#5.0.0");
    if (!r4) {
      engine.loadPackage("hl7.fhir.uv.dicom-sr", "1.0.0");
      engine.loadPackage("sr2fhir.extensions.r5", "0.1.0");
    } else {
      engine.loadPackage("sr2fhir.xver-r5.r4-standins", "0.1.0");
      engine.loadPackage("sr2fhir.extensions.r4", "0.1.0");
    }
    engine.prepare();
    for (String file : files) {
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
