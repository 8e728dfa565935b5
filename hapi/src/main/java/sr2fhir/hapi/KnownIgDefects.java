package sr2fhir.hapi;

import ca.uhn.fhir.validation.IValidationContext;
import ca.uhn.fhir.validation.IValidatorModule;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import java.util.List;
import org.hl7.fhir.instance.model.api.IBaseResource;

/**
 * Validation, with the errors that come from defects of the IG itself (not of the instance)
 * reported as warnings. One only, the same the official-validator check in CI allows
 * (docs/conformance.md): derived-imaging-measurement slices {@code derivedFrom} by {@code type}
 * at path {@code reference}, a string in both slices, so every {@code derivedFrom} matches both
 * slices whatever it points to. Every other error still refuses the request.
 */
final class KnownIgDefects implements IValidatorModule {
    private static final List<String> DEFECTS = List.of(
            "derived-imaging-measurement|1.0.0, Element matches more than one slice - imagingMeasurementGroupRef, sourceSRContentItem");

    private final IValidatorModule delegate;

    KnownIgDefects(IValidatorModule delegate) {
        this.delegate = delegate;
    }

    @Override
    public void validateResource(IValidationContext<IBaseResource> ctx) {
        delegate.validateResource(ctx);
        for (SingleValidationMessage m : ctx.getMessages()) {
            if (m.getSeverity() == ResultSeverityEnum.ERROR && m.getMessage() != null && DEFECTS.stream().anyMatch(m.getMessage()::contains)) {
                m.setSeverity(ResultSeverityEnum.WARNING);
            }
        }
    }
}
